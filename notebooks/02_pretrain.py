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

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE). The same names are used by `semcathode run`.
profile = "smoke"        # smoke | demo | paper: the configuration profile
config = ""              # YAML file overriding the profile (empty: none)
data_dir = ""            # folder of micrographs (empty: the dataset of the profile)
out_dir = "../reports/notebook-run"   # run folder; this notebook writes into out_dir/<notebook>/

# %%
import semcathode as sc
cfg = sc.load_config(profile, config or None, {"data.data_dir": data_dir} if data_dir else None)
out = sc.NotebookOutputs(out_dir, "02_pretrain", cfg)
cfg.profile, sc.config_hash(cfg)

# %%
study = sc.load_study(cfg, out_dir)
stage1 = {seed: sc.train_stage1(study.items, cfg, seed, study.classes) for seed in cfg.protocol.seeds}

# %% [markdown]
# ## Training curves

# %%
hist = sc.stack_histories(stage1)
out.table(hist, 'history', 'Per-epoch history of every seed', section='Training', show=False)
out.figure(sc.plot_history(hist), 'training_curves', 'Stage-1 training curves per seed', section='Training')

# %% [markdown]
# ## Source test metrics

# %%
s1_results, s1_preds = sc.evaluate_models(stage1, study.rows('source', 'test'), study.classes)
s1_summary = sc.summarize_runs(s1_results.assign(arm='stage1'), n_boot=cfg.evaluate.n_boot)
out.table(s1_summary, 'source_test_summary', 'Stage-1 model on the source test split: mean, std and 95% bootstrap CI over seeds', section='Source test metrics')
s1_summary

# %%
lo, hi = sc.image_bootstrap_ci(s1_preds.label, s1_preds.pred, study.classes, n_boot=cfg.evaluate.n_boot)
out.text('Source test metrics', f'Pooled over seeds, 95% image-bootstrap CI of the source-test macro-F1: [{lo:.3f}, {hi:.3f}] ({len(s1_preds)} predictions).')
out.figure(sc.plot_confusions(s1_preds.assign(arm='stage1'), study.classes), 'source_confusion', 'Stage-1 confusion on the source test split (row-normalised, all seeds)', section='Source test metrics')

# %% [markdown]
# ## Baseline that fine-tuning must beat: a linear probe on frozen ImageNet features

# %%
probe = sc.linear_probe_report(study, cfg)
out.table(probe, 'linear_probe', 'Logistic regression on frozen backbone features', section='Linear-probe baseline')
out.text('Linear-probe baseline', sc.probe_verdict(s1_summary, probe))
print(sc.probe_verdict(s1_summary, probe))

# %% [markdown]
# ## Export (safetensors + JSON) and provenance

# %%
first = stage1[cfg.protocol.seeds[0]]
model_path = sc.export_trained(first, out.dir / 'model.safetensors', cfg, study.classes, metrics=s1_results.iloc[0].to_dict())
out.text('Backbone and weights', sc.provenance_note(first.weights_info))
out.json(first.weights_info, 'weights_provenance')
print(sc.provenance_note(first.weights_info))

# %%
out.json(s1_results.to_dict(orient='records'), 'metrics')
out.table(s1_results, 'source_test_per_seed', section=None)
out.save({'source_test_macro_f1': s1_summary.to_dict(orient='records'), 'linear_probe': probe.to_dict(orient='records'), 'weights': first.weights_info})
