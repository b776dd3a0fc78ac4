"""``prefgen train``: DPO with trl on a store's rows, the papers' extra loss terms, and the iterative rounds loop.

Heavy libraries (torch, transformers, trl, peft) load only inside the functions that train; importing this package
and reading a ``TrainConfig`` stays light, so recipes with a ``train`` section validate quickly.
"""
