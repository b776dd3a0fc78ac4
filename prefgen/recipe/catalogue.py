"""The stage catalogue: recipe ``type`` names mapped to their stages (most in ``prefgen.stages``; the shapes world's
ground-truth stages in ``prefgen.shapes``).

Only declarations live here (types, columns, params), so validating a recipe never loads a model.
"""

from prefgen.shapes.oracle import ShapesAnswerParams, ShapesOracleParams
from prefgen.stages.answer import AnswerParams
from prefgen.stages.answer_corrupted import AnswerCorruptedParams
from prefgen.stages.caption import CaptionParams
from prefgen.stages.clip_score import ClipScoreParams
from prefgen.stages.corrupt import CorruptParams
from prefgen.stages.csr_search import CsrSearchParams
from prefgen.stages.logprob_score import LogprobScoreParams
from prefgen.stages.reward_mix import RewardMixParams
from prefgen.stages.select_pairs import SelectPairsParams
from prefgen.stages.self_enhance import SelfEnhanceParams
from prefgen.stages.base import StageParams
from prefgen.stages.self_question import SelfQuestionParams

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
