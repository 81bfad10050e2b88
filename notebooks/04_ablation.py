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
# # 04 · Ablation, statistics and validity checks
#
# Arms x imbalance strategies x seeds with confidence intervals and paired tests; then what the paper does not check: a shortcut baseline, session confounding, robustness to acquisition shifts, and the data-poor learning curve (also on NCM523, a real new domain).

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE). The same names are used by `semcathode run`.
profile = "smoke"        # smoke | demo | paper: the configuration profile
config = ""              # YAML file overriding the profile (empty: none)
data_dir = ""            # folder of micrographs (empty: the dataset of the profile)
out_dir = "../reports/notebook-run"   # run folder; this notebook writes into out_dir/<notebook>/

# %%
import semcathode as sc
cfg = sc.load_config(profile, config or None, {"data.data_dir": data_dir} if data_dir else None)
out = sc.report.NotebookOutputs(out_dir, "04_ablation", **sc.pipeline.report_roots(cfg))
cfg.profile, sc.config.config_hash(cfg)

# %%
run = sc.open_run(out_dir)  # earlier results, read by name
study = sc.load_study(sc.config.study_settings(cfg), run.manifest)
results = run.table('arm_results')
summary = sc.metrics.summarize_runs(results, n_boot=cfg.evaluate.n_boot)
out.table(summary, 'arm_summary', 'Arms: mean, std and 95% bootstrap CI over seeds (target test split)', section='Statistics over seeds')
summary

# %%
paired = sc.metrics.paired_table(results, reference='pre_ft_oversample')
out.table(paired, 'paired_tests', 'Paired comparison against Pre+FT (oversample) over seeds (Wilcoxon signed-rank)', section='Statistics over seeds')
paired

# %% [markdown]
# ## Shortcut baseline: can the class be predicted without morphology?

# %%
shortcut, verdict = sc.study.shortcut_study(study)
out.table(shortcut, 'shortcut', 'Logistic regression on grey-level histogram, mean, std and instrument settings (no morphology), same splits as the CNN', section='Shortcut and confounds')
out.text('Shortcut and confounds', verdict['message'])
out.text('Shortcut and confounds', sc.study.session_check(study.manifest)['message'])
out.table(sc.study.session_probe(study), 'session_probe', 'Session-aware evaluation (linear probe; classes with two or more sessions only)', section='Shortcut and confounds')
print(verdict['message'])
shortcut

# %%
norm = sc.study.normalisation_ablation(study, cfg.validity.ablation_seeds)
if len(norm): out.table(sc.metrics.summarize_runs(norm, group='normalisation', n_boot=cfg.evaluate.n_boot), 'normalisation_ablation', 'Stage-1 CNN on the source test split with dataset vs per-image normalisation', section='Shortcut and confounds')

# %% [markdown]
# ## Robustness to acquisition shifts

# %%
v = cfg.validity
robust = sc.study.robustness_study(study, v.robustness_arms, cfg.protocol.seeds, v.robustness_kinds, v.robustness_severities)
out.table(robust, 'robustness', section=None)
out.figure(sc.report.plot_curves(robust, x='severity', y='macro_f1', hue='arm', col='kind', title='Target macro-F1 vs shift severity'), 'robustness', 'Macro-F1 against the severity of each acquisition shift (mean and 95% CI over seeds)', section='Acquisition-shift robustness')

# %% [markdown]
# ## The data-poor learning curve

# %%
curve = sc.study.learning_curve(study, v.learning_curve_sizes, v.learning_curve_arms, v.learning_curve_seeds)
out.table(curve, 'learning_curve', section=None)
out.figure(sc.report.plot_curves(curve, x='n_per_class', y='macro_f1', hue='arm', logx=True, title='Target macro-F1 vs target images per class'), 'learning_curve', 'Target macro-F1 against target train images per class (group-aware subsets of the train split)', section='Data-poor learning curve')
out.text('Data-poor learning curve', sc.report.curve_note(curve))

# %%
new = sc.study.new_domain_curve(study, v.new_domain_sizes, v.learning_curve_seeds)
out.table(new, 'new_domain_curve', section=None)
if len(new): out.figure(sc.report.plot_curves(new, x='n_per_class', y='macro_f1', hue='arm', title='NCM523 (real new domain): from stage 1 vs from ImageNet'), 'new_domain_curve', 'NCM523, a composition never seen in stage 1: macro-F1 against train images per class', section='Real new domain: NCM523')

# %%
out.save({'shortcut_warning': verdict['warn'], 'arms': summary.to_dict(orient='records')})
