"""The stage catalogue: recipe ``type`` names mapped to their stages (most in ``prefgen.stages``; the shapes world's
ground-truth stages in ``prefgen.shapes``).

Only declarations live here (types, columns, params), so validating a recipe never loads a model.
"""

from prefgen.shapes.oracle import ShapesAnswerParams, ShapesOracleParams
from prefgen.stages.base import StageParams
from prefgen.stages.corrupt.stage import CorruptParams
from prefgen.stages.csr.stage import CsrSearchParams
from prefgen.stages.generate.answer import AnswerParams
from prefgen.stages.generate.answer_corrupted import AnswerCorruptedParams
from prefgen.stages.generate.caption import CaptionParams
from prefgen.stages.generate.self_enhance import SelfEnhanceParams
from prefgen.stages.generate.self_question import SelfQuestionParams
from prefgen.stages.score.clip_score import ClipScoreParams
from prefgen.stages.score.logprob_score import LogprobScoreParams
from prefgen.stages.score.reward_mix import RewardMixParams
from prefgen.stages.select_pairs import SelectPairsParams

STAGES: dict[str, type[StageParams]] = {
    cls.stage_type(): cls
    for cls in (
        SelfQuestionParams,
        CaptionParams,
        AnswerParams,
        SelfEnhanceParams,
        CorruptParams,
        AnswerCorruptedParams,
        CsrSearchParams,
        ClipScoreParams,
        LogprobScoreParams,
        RewardMixParams,
        ShapesOracleParams,
        ShapesAnswerParams,
        SelectPairsParams,
    )
}

__all__ = ["STAGES"]
