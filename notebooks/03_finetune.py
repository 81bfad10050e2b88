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
# # 03 · Stage 2: fine-tune on the data-poor target domain
#
# Arms: Pre+FT with targeted oversampling or a class-weighted loss, FT-only (ImageNet to target), Scratch+FT and Pretrain-only (the stage-1 model evaluated on the target). Arms that do not start from the stage-1 model get a fair budget (see the rule below), and a linear probe on frozen features is the floor every arm must beat.

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE). The same names are used by `semcathode run`.
profile = "smoke"        # smoke | demo | paper: the configuration profile
config = ""              # YAML file overriding the profile (empty: none)
data_dir = ""            # folder of micrographs (empty: the dataset of the profile)
out_dir = "../reports/notebook-run"   # run folder; this notebook writes into out_dir/<notebook>/

# %%
import semcathode as sc
cfg = sc.load_config(profile, config or None, {"data.data_dir": data_dir} if data_dir else None)
out = sc.report.NotebookOutputs(out_dir, "03_finetune", **sc.pipeline.report_roots(cfg))
cfg.profile, sc.config.config_hash(cfg)

# %%
run = sc.open_run(out_dir)  # earlier results, read by name
study = sc.load_study(sc.config.study_settings(cfg), run.manifest)
out.text('Target domain', sc.report.target_domain_note(cfg.target))
out.figure(sc.report.plot_domain_pair(study.manifest[study.manifest.label.isin(study.classes)]), 'source_vs_target', 'Source images and their simulated-shift target counterparts', section='Target domain')
print(sc.report.target_domain_note(cfg.target))

# %%
results, preds, models = sc.run_arms(study, keep=cfg.cam.arms)
out.table(results, 'arm_results', 'One row per arm and seed: metrics on the target test split', section=None)
out.table(preds, 'predictions', section=None)
out.text('Training budgets', sc.report.budget_note(cfg.protocol, results))
print(sc.report.budget_note(cfg.protocol, results))

# %% [markdown]
# ## Headline table (shaped like the paper's)

# %%
table = sc.metrics.paper_table(results, study.classes, n_boot=cfg.evaluate.n_boot)
out.table(table.reset_index(), 'paper_table', 'Target test split: arms x accuracy, macro-F1 and per-class F1, mean ± std [95% bootstrap CI over seeds]', section='Headline results')
out.text('Headline results', sc.report.target_domain_note(cfg.target))
probe = run.table('linear_probe')
floor = sc.study.probe_floor(results, probe, n_boot=cfg.evaluate.n_boot)
out.table(floor, 'probe_floor', 'Which arms beat the linear probe (frozen ImageNet features + logistic regression, target train -> target test): the floor every fine-tuned arm must beat', section='Headline results')
table

# %%
out.figure(sc.report.plot_bars(results, x='arm', y='macro_f1', title='Target macro-F1 per arm (mean and 95% CI over seeds)'), 'arm_macro_f1', 'Target macro-F1 per arm', section='Headline results')
out.figure(sc.report.plot_confusions(preds, study.classes), 'confusion', 'Row-normalised confusion matrices on the target test split, summed over seeds', section='Confusion matrices')

# %%
exported = sc.study.export_models(models, out.dir, study.classes, seed=cfg.protocol.seeds[0])
out.json({k: str(v) for k, v in exported.items()}, 'exported_models')
out.save({'arms': sc.metrics.summarize_runs(results, n_boot=cfg.evaluate.n_boot).to_dict(orient='records')})
