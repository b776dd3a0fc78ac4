from prefgen.cli.main import main

main()
