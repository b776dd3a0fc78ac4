"""The shapes world: procedural scenes with exact ground truth, small models trained on a CPU, and hallucination
metrics that need no human labels.

- ``world``: scenes (1-4 coloured shapes on 64 x 64 backgrounds), a training distribution with co-occurrence priors
  and an evaluation distribution that breaks them; ``language``: captions, questions and answers from ground truth.
- ``mentions``: object mentions in free text (synonyms, plurals, counts, negation).
- ``evaluate``: CHAIR, POPE, reward accuracy of preference pairs, CLIP AUC; ``realdata``: POPE jsonl files and
  CHAIR on COCO annotations; ``bench``: the named benchmarks behind ``prefgen eval``.
- ``models``, ``data``, ``train``: a tiny LLaVA and a tiny open_clip CLIP, trained by ``train.pretrain``.

Importing the package is cheap; torch, transformers and open_clip load only where a model is built or run.
"""

from prefgen._compat import tvshim as _tvshim

_tvshim.install()
