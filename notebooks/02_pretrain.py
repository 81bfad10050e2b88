# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Stage 1: pretrain on the data-rich source domain
#
# EfficientNet (timm) with discriminative fine-tuning: head first, then all layers with learning rates spread over depth. One model per seed, cached and reused by every later arm.
#
# The network sees fields of view of a fixed physical size: every micrograph is resampled to the profile's µm/px, training draws random crops (or, with a trunk cache, reads the cached trunk output of every tile), and evaluation covers the whole bar-free frame with a tile grid and aggregates the tiles' log-probabilities into **one prediction per micrograph**.

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE). The same names are used by `semcathode run`.
profile = "smoke"        # smoke | demo | paper: the configuration profile
config = ""              # YAML file overriding the profile (empty: none)
data_dir = ""            # folder of micrographs (empty: the dataset of the profile)
out_dir = "../reports/notebook-run"   # run folder; this notebook writes into out_dir/<notebook>/

# %%
import semcathode as sc
cfg = sc.load_config(profile, config or None, {"data.data_dir": data_dir} if data_dir else None)
out = sc.report.NotebookOutputs(out_dir, "02_pretrain", **sc.pipeline.report_roots(cfg))
cfg.profile, sc.config.config_hash(cfg)

# %%
run = sc.open_run(out_dir)  # earlier results, read by name
study = sc.load_study(sc.config.study_settings(cfg), run.manifest)
out.text('Input representation', sc.report.representation_note(cfg.preprocess, cfg.model, cfg.evaluate.aggregate))
print(sc.report.representation_note(cfg.preprocess, cfg.model, cfg.evaluate.aggregate))
stage1 = {seed: sc.train_stage1(study, seed) for seed in cfg.protocol.seeds}

# %% [markdown]
# ## Training curves

# %%
hist = sc.study.stack_histories(stage1)
out.table(hist, 'history', 'Per-epoch history of every seed', section='Training', show=False)
out.figure(sc.report.plot_history(hist), 'training_curves', 'Stage-1 training curves per seed', section='Training')

# %% [markdown]
# ## Source test metrics: frame-block test split and session tail, side by side
#
# The frame-block test split holds blocks of consecutive frames from inside each session; the session tail holds the **last frames** of every session, a test of extrapolation along the stage. Metrics are per micrograph; `tile_accuracy` (each tile on its own) is secondary.

# %%
split_results, split_preds = sc.evaluate_splits(stage1, study, ('test', 'tail'))
s1_results = split_results[split_results.split == 'frame-block test']
s1_summary = sc.metrics.summarize_runs(s1_results.assign(arm='stage1'), n_boot=cfg.evaluate.n_boot)
split_summary = sc.metrics.summarize_runs(split_results, metrics=('accuracy', 'macro_f1', 'tile_accuracy'), group='split', n_boot=cfg.evaluate.n_boot)
out.table(split_summary, 'source_test_summary', 'Stage-1 model per micrograph on the frame-block test split and on the session tail: mean, std and 95% bootstrap CI over seeds', section='Source test metrics')
split_summary

# %%
s1_preds = split_preds[split_preds.split == 'frame-block test']
lo, hi = sc.metrics.image_bootstrap_ci(s1_preds.label, s1_preds.pred, study.classes, n_boot=cfg.evaluate.n_boot)
out.text('Source test metrics', f'Pooled over seeds, 95% micrograph-bootstrap CI of the frame-block test macro-F1: [{lo:.3f}, {hi:.3f}] ({len(s1_preds)} predictions).')
out.figure(sc.report.plot_confusions(split_preds.assign(arm=split_preds.split), study.classes), 'source_confusion', 'Stage-1 confusion per micrograph on the frame-block test split and the session tail (row-normalised, all seeds)', section='Source test metrics')

# %% [markdown]
# ## Baseline that fine-tuning must beat: a linear probe on frozen ImageNet features

# %%
probe = sc.study.linear_probe_report(study)
out.table(probe, 'linear_probe', 'Logistic regression on frozen ImageNet features (mean over each micrograph\'s tile grid), per micrograph', section='Linear-probe baseline')
out.text('Linear-probe baseline', sc.report.probe_verdict(s1_summary, probe))
print(sc.report.probe_verdict(s1_summary, probe))

# %% [markdown]
# ## An interpretable baseline: the morphology measures alone
#
# Logistic regression on notebook 01's per-micrograph measures (size, shape, fines, boundary density, texture; no pixels, no network), its regularisation chosen on the pre-tail: how much of each class an interpretable description explains, and which measures carry it.

# %%
measures = run.table('measures')
mscores, mweights, _ = sc.study.measures_baseline(measures, study.classes)
comparison = sc.study.baseline_comparison(mscores, split_summary, probe)
out.table(mscores, 'measures_baseline', 'Measures-only logistic regression per micrograph, per split (per-class F1 included)', section='Measures-only baseline', show=False)
out.table(mweights, 'measures_weights', 'What carries it: macro-F1 lost on the frame-block test when a measure is shuffled (importance), mean |standardised coefficient| and per-class coefficients', section='Measures-only baseline', show=False)

# %%
out.table(comparison.reset_index(), 'baseline_comparison', 'Macro-F1 per micrograph: measures only, the frozen probe and the CNN, frame-block test and session tail', section='Measures-only baseline')
out.text('Measures-only baseline', sc.report.measures_baseline_note(mscores, mweights))
print(sc.report.measures_baseline_note(mscores, mweights))
comparison

# %% [markdown]
# ## When not to trust a prediction: calibration and familiarity
#
# Temperature scaling is fitted on the valid split (the pre-tail); the familiarity score (`ood_score`) is the mean cosine distance of a micrograph's features to its nearest training micrographs, with the `familiar` threshold at a quantile of the valid split. With `evaluate.familiarity_layers` it is read at several layers (mid-level blocks see texture and particle shape), the layer set chosen against NCM523's train split and reported on its test split. NCM523, a composition the model never saw, should look unfamiliar.

# %%
first = stage1[cfg.protocol.seeds[0]]
trust, trust_table = sc.study.fit_trust(first, study)
out.table(trust['layer_selection'], 'familiarity_layers', 'Familiarity: AUROC of every candidate layer set, valid split against NCM523\'s train split (the set chosen here is reported above on other micrographs)', section='Calibration and familiarity', show=False)
out.table(trust_table, 'trust', 'Calibration (expected calibration error, 10 bins) and familiarity of the exported stage-1 model (seed %d)' % first.seed, section='Calibration and familiarity')
out.text('Calibration and familiarity', sc.report.trust_note(trust_table, cfg.evaluate.ood_k))
print(sc.report.trust_note(trust_table, cfg.evaluate.ood_k))
trust_table

# %% [markdown]
# ## Export (safetensors + JSON) and provenance

# %%
model_path = sc.study.export_trained(first, out.dir / 'model.safetensors', study.classes, metrics=s1_results.iloc[0].to_dict(), trust=trust)
exported = sc.load_model(model_path)
check = sc.study.scale_check(exported, study.rows('source', 'test').drop_duplicates('label').path.tolist(), pixel_size_um=cfg.preprocess.pixel_size_um or None)
out.table(check, 'scale_check', 'The exported model on one source-test micrograph per class and on a copy downsampled 2x (sidecar kept, so the pixel size doubles; a file without one gets the profile\'s preprocess.pixel_size_um): the model resamples both to its scale', section='Scale invariance')
out.text('Scale invariance', f'Same class for the micrograph and its 2x-downsampled copy on {int(check.same.sum())} of {len(check)} classes.')
out.text('Backbone and weights', sc.report.provenance_note(first.weights_info))
out.json(first.weights_info, 'weights_provenance')
print(sc.report.provenance_note(first.weights_info))

# %%
out.json(s1_results.to_dict(orient='records'), 'metrics')
out.table(s1_results, 'source_test_per_seed', section=None)
out.save({'source_test_macro_f1': s1_summary.to_dict(orient='records'), 'splits': split_summary.to_dict(orient='records'), 'linear_probe': probe.to_dict(orient='records'), 'measures_baseline': mscores.to_dict(orient='records'), 'trust': trust_table.astype(str).to_dict(orient='records'), 'weights': first.weights_info})
