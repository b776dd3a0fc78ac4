"""The shapes world: procedural scenes with exact ground truth, small models trained on a CPU, and hallucination
metrics that need no human labels.

- ``world``: scenes (1-4 coloured shapes on 64 x 64 backgrounds), a training distribution with co-occurrence priors
  and an evaluation distribution that breaks them; ``language``: captions, questions and answers from ground truth.
- ``mentions``: object mentions in free text (synonyms, plurals, counts, negation).
- ``metrics``: CHAIR, POPE questions and CLIP AUC on scenes; ``judge``: answers and pairs judged against the truth;
  ``skills``: what a VLM can do, asked as the stages ask; ``oracle``: the ground-truth stages (the controls).
- ``pretrain/``: a tiny LLaVA and a tiny open_clip CLIP (``models``), their data (``data``) and training
  (``train.pretrain``); ``checkpoints/``: the shipped pair. The benches behind ``prefgen eval`` are in
  ``prefgen.eval``.

Importing the package is cheap; torch, transformers and open_clip load only where a model is built or run.
"""

from prefgen._compat import tvshim as _tvshim

_tvshim.install()
