"""Backbones, the fastai learner, the exported model file and whole-micrograph prediction."""

from __future__ import annotations

from .._lazy import attach

#: Public name -> module of this subpackage that defines it.
_NAMES: dict[str, str] = {
    # one rank of a launched training group (study._rank): what it saw, for the model store's record
    "RankRecord": "_distributed",
    # backbones
    "BACKBONES": "backbones",
    "create_backbone": "backbones",
    "HUB_TIMEOUT_S": "backbones",
    "HubUnavailableError": "backbones",
    "imagenet_classifier": "backbones",
    "IMAGENET_MEAN": "backbones",
    "IMAGENET_STD": "backbones",
    "list_backbones": "backbones",
    "LITE0_SHA256": "backbones",
    "LITE0_STAGE_DEPTHS": "backbones",
    "lite0_state_dict": "backbones",
    "normalization": "backbones",
    "WEIGHT_CHOICES": "backbones",
    "weights_cache_dir": "backbones",
    "WeightsInfo": "backbones",
    "WeightsIntegrityError": "backbones",
    # export
    "arm_model_file": "export",
    "export_model": "export",
    "ExportedModel": "export",
    "fold_batchnorm": "export",
    "FORMAT": "export",
    "load_model": "export",
    "ModelFileError": "export",
    "predict_paths": "export",
    "predict_archive": "archive",
    "archive_columns": "archive",
    # learner
    "ChannelsLastInputs": "learner",
    "create_model": "learner",
    "efficientnet_splitter": "learner",
    "fit_stage": "learner",
    "load_body_weights": "learner",
    "make_learner": "learner",
    "seed_everything": "learner",
    # predict
    "aggregate_log_probs": "predict",
    "auroc": "scores",
    "expected_calibration_error": "scores",
    "fit_temperature": "scores",
    "knn_ood_score": "scores",
    "MicrographOutputs": "predict",
    "normalise_batch": "predict",
    "predict_arrays": "predict",
    "predict_probs": "predict",
    "summarise_tiles": "predict",
    # the frozen trunk, its cache and the top trained on it
    "split_network": "trunk",
    "Trunk": "trunk",
    "Top": "trunk",
    "TrunkCache": "trunk",
    "TrunkSpec": "trunk",
    "trunk_digest": "trunk",
    "CachedTiles": "top",
    "make_top_learner": "top",
    "cached_outputs": "top",
    # a linear head on a block stage (the frozen-feature probe as the model)
    "FeatureScale": "head",
    "HEAD_LAYERS": "head",
    "head_layer_of": "head",
    "linear_head": "head",
    # familiarity over several layers
    "layer_scales": "familiarity",
    "multi_layer_score": "familiarity",
    "select_layers": "familiarity",
}

__all__ = sorted(_NAMES)
__getattr__, __dir__ = attach(__name__, _NAMES)
