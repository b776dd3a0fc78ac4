"""Each tiny family's processor and model config, from its offline tokenizer: the shapes of a real checkpoint of the
family (its vision tower, projector, image tokens, cache layout), at a few hundred thousand parameters.
``families.build_tiny_vlm`` turns one into a model folder. Attention heads are 32 wide, the smallest vLLM's CPU
attention runs, so every family can be served by both engines."""

from __future__ import annotations

GEMMA3_SLIDING_WINDOW = 16  # tokens; tiny prompts are longer, so the sliding-window layers really slide
IMAGE_SIZE = 32  # pixels the LLaVA / Idefics3 / SmolVLM vision towers see; Qwen families see 56 x 56
_TEXT = dict(
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=2,  # head size 32: the smallest vLLM's CPU attention runs
    num_key_value_heads=1,
    max_position_embeddings=2048,
)
_VISION = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    image_size=IMAGE_SIZE,
    patch_size=8,
)


def _text_ids(tokenizer) -> dict:
    return dict(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )


def _llava(tokenizer):
    from transformers import CLIPImageProcessor, CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaProcessor

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=tokenizer.chat_template,
        image_token="<image>",
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(**_VISION, projection_dim=32),
        text_config=LlamaConfig(**_TEXT, **_text_ids(tokenizer)),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=(IMAGE_SIZE // 8) ** 2,
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    return processor, config


def _qwen(tokenizer, version: str):
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLProcessor,
        Qwen2VLConfig,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    pixels = {"shortest_edge": 56 * 56, "longest_edge": 56 * 56}  # every image becomes 4 x 4 patches -> 4 tokens
    image_processor = Qwen2VLImageProcessor(size=pixels)
    video_processor = Qwen2VLVideoProcessor(size=pixels)
    text = dict(
        **_TEXT,
        **_text_ids(tokenizer),
        rope_parameters={"rope_type": "default", "mrope_section": [4, 6, 6], "rope_theta": 10000.0},
    )
    ids = dict(
        image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tokenizer.convert_tokens_to_ids("<|vision_end|>"),
    )
    if version == "2":
        vision = dict(
            depth=2,
            embed_dim=32,
            hidden_size=64,
            num_heads=4,
            mlp_ratio=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
        )
        config = Qwen2VLConfig(text_config=text, vision_config=vision, **ids)
        processor_class = Qwen2VLProcessor
    else:
        vision = dict(
            depth=2,
            hidden_size=32,
            out_hidden_size=64,
            intermediate_size=64,
            num_heads=4,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=56,
            fullatt_block_indexes=[1],
        )
        config = Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids)
        processor_class = Qwen2_5_VLProcessor
    processor = processor_class(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=tokenizer.chat_template,
    )
    return processor, config


def _idefics(tokenizer, smol: bool):
    from transformers import (
        Idefics3Config,
        Idefics3ImageProcessor,
        Idefics3Processor,
        SmolVLMConfig,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )

    edge = {"longest_edge": IMAGE_SIZE}
    image_kwargs = dict(do_image_splitting=False, size=edge, max_image_size=edge)
    seq_len = (IMAGE_SIZE // 8) ** 2 // 4  # patches / scale_factor ** 2
    text = dict(model_type="llama", **_TEXT, **_text_ids(tokenizer))
    config_kwargs = dict(
        vision_config=dict(_VISION),
        text_config=text,
        scale_factor=2,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )
    if smol:
        processor = SmolVLMProcessor(
            image_processor=SmolVLMImageProcessor(**image_kwargs),
            tokenizer=tokenizer,
            video_processor=SmolVLMVideoProcessor(),
            image_seq_len=seq_len,
            chat_template=tokenizer.chat_template,
        )
        return processor, SmolVLMConfig(**config_kwargs)
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(**image_kwargs),
        tokenizer=tokenizer,
        image_seq_len=seq_len,
        chat_template=tokenizer.chat_template,
    )
    return processor, Idefics3Config(**config_kwargs)


def _gemma3(tokenizer):
    from transformers import Gemma3Config, Gemma3ImageProcessor, Gemma3Processor, Gemma3TextConfig, SiglipVisionConfig

    tokens = 4  # 4 x 4 patches pooled 2 x 2
    processor = Gemma3Processor(
        image_processor=Gemma3ImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
        tokenizer=tokenizer,
        image_seq_length=tokens,
        chat_template=tokenizer.chat_template,
    )
    text = Gemma3TextConfig(
        **_TEXT,
        **_text_ids(tokenizer),
        head_dim=32,
        query_pre_attn_scalar=16,
        sliding_window=GEMMA3_SLIDING_WINDOW,
        layer_types=["sliding_attention", "full_attention"],
    )
    ids = tokenizer.convert_tokens_to_ids
    config = Gemma3Config(
        text_config=text,
        vision_config=SiglipVisionConfig(**_VISION),
        mm_tokens_per_image=tokens,
        boi_token_index=ids("<start_of_image>"),
        eoi_token_index=ids("<end_of_image>"),
        image_token_index=ids("<image_soft_token>"),
    )
    return processor, config


def _llava_onevision(tokenizer):
    from transformers import (
        LlavaOnevisionConfig,
        LlavaOnevisionImageProcessor,
        LlavaOnevisionProcessor,
        LlavaOnevisionVideoProcessor,
        Qwen2Config,
        SiglipVisionConfig,
    )

    # One grid point equal to the tower's size: every image becomes the base view plus one tile (anyres).
    grid = [[IMAGE_SIZE, IMAGE_SIZE]]
    image_processor = LlavaOnevisionImageProcessor(
        size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, image_grid_pinpoints=grid
    )
    video_processor = LlavaOnevisionVideoProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE})
    processor = LlavaOnevisionProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        num_image_tokens=(IMAGE_SIZE // 8) ** 2,
        vision_feature_select_strategy="full",
        chat_template=tokenizer.chat_template,
        vision_aspect_ratio="anyres_max_9",
    )
    config = LlavaOnevisionConfig(
        vision_config=SiglipVisionConfig(**_VISION),
        text_config=Qwen2Config(**_TEXT, **_text_ids(tokenizer)),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        video_token_index=tokenizer.convert_tokens_to_ids("<video>"),
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        image_grid_pinpoints=grid,
        vision_aspect_ratio="anyres_max_9",
    )
    return processor, config


def _qwen3(tokenizer, hybrid: bool):
    from transformers import Qwen2VLImageProcessor, Qwen3VLConfig, Qwen3VLProcessor, Qwen3VLVideoProcessor

    pixels = {"shortest_edge": 64 * 64, "longest_edge": 64 * 64}  # 4 x 4 patches of 16 px, merged 2 x 2 -> 4 tokens
    image_processor = Qwen2VLImageProcessor(size=pixels, patch_size=16)
    video_processor = Qwen3VLVideoProcessor(size=pixels, patch_size=16)
    processor = Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=tokenizer.chat_template,
    )
    rope = {"rope_type": "default", "mrope_section": [4, 6, 6], "mrope_interleaved": True, "rope_theta": 10000.0}
    text = dict(**_TEXT, **_text_ids(tokenizer), head_dim=32, rope_parameters=rope)
    vision = dict(
        depth=2,
        hidden_size=32,
        out_hidden_size=64,
        intermediate_size=64,
        num_heads=4,
        patch_size=16,
        spatial_merge_size=2,
        temporal_patch_size=2,
        num_position_embeddings=16,
        deepstack_visual_indexes=[0],
    )
    ids = dict(
        image_token_id=tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        video_token_id=tokenizer.convert_tokens_to_ids("<|video_pad|>"),
        vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tokenizer.convert_tokens_to_ids("<|vision_end|>"),
    )
    if not hybrid:
        return processor, Qwen3VLConfig(text_config=text, vision_config=vision, **ids)
    from transformers import Qwen3_5Config

    # Qwen3.5: gated delta-net (linear attention) layers interleaved with full attention.
    text.update(
        layer_types=["linear_attention", "full_attention"],
        linear_num_key_heads=2,
        linear_num_value_heads=4,
        linear_key_head_dim=8,
        linear_value_head_dim=8,
        linear_conv_kernel_dim=4,
    )
    vision.pop("deepstack_visual_indexes")
    return processor, Qwen3_5Config(text_config=text, vision_config=vision, **ids)


def _internvl(tokenizer):
    from transformers import GotOcr2ImageProcessor, InternVLConfig, InternVLProcessor, InternVLVideoProcessor

    edge = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    tokens = (IMAGE_SIZE // 8) ** 2 // 4  # patches, pixel-shuffled by downsample_ratio 0.5
    processor = InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size=edge, crop_to_patches=False),
        tokenizer=tokenizer,
        video_processor=InternVLVideoProcessor(size=edge),
        image_seq_length=tokens,
        chat_template=tokenizer.chat_template,
    )
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=[IMAGE_SIZE, IMAGE_SIZE],
        patch_size=[8, 8],
    )
    config = InternVLConfig(
        vision_config=vision,
        text_config=dict(model_type="qwen2", **_TEXT, **_text_ids(tokenizer), tie_word_embeddings=False),
        image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
        image_seq_length=tokens,
        downsample_ratio=0.5,
        tie_word_embeddings=False,
    )  # tied, a random model echoes its
    # prompt's last token forever
    return processor, config


def _mistral3(tokenizer):
    from transformers import (
        Mistral3Config,
        MistralConfig,
        PixtralImageProcessor,
        PixtralProcessor,
        PixtralVisionConfig,
    )

    image_processor = PixtralImageProcessor(size={"longest_edge": IMAGE_SIZE}, patch_size=8)
    processor = PixtralProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        spatial_merge_size=2,
        chat_template=tokenizer.chat_template,
    )
    vision = PixtralVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=IMAGE_SIZE,
        patch_size=8,
        head_dim=8,
    )
    config = Mistral3Config(
        vision_config=vision,
        text_config=MistralConfig(**_TEXT, **_text_ids(tokenizer), head_dim=32, sliding_window=None),
        image_token_index=tokenizer.convert_tokens_to_ids("[IMG]"),
        spatial_merge_size=2,
        tie_word_embeddings=False,
    )
    return processor, config


#: family -> (processor, config) from the family's tokenizer
BUILDERS = {
    "llava": _llava,
    "qwen2_vl": lambda tok: _qwen(tok, "2"),
    "qwen2_5_vl": lambda tok: _qwen(tok, "2.5"),
    "idefics3": lambda tok: _idefics(tok, smol=False),
    "smolvlm": lambda tok: _idefics(tok, smol=True),
    "gemma3": _gemma3,
    "llava_onevision": _llava_onevision,
    "qwen3_vl": lambda tok: _qwen3(tok, hybrid=False),
    "internvl": _internvl,
    "mistral3": _mistral3,
    "qwen3_5": lambda tok: _qwen3(tok, hybrid=True),
}
