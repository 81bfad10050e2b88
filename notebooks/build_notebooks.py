"""Write the notebooks 01-05 from the cell sources below (outputs cleared).

Run ``python notebooks/build_notebooks.py`` after editing; the notebooks are plain gallery
examples of the public API: a ``parameters`` cell, then short cells, no function definitions.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

PARAMS = '''# Parameters (papermill: -p NAME VALUE). The same names are used by `semcathode run`.
profile = "smoke"        # smoke | demo | paper: the configuration profile
config = ""              # YAML file overriding the profile (empty: none)
data_dir = ""            # folder of micrographs (empty: the dataset of the profile)
out_dir = "../reports/notebook-run"   # run folder; this notebook writes into out_dir/<notebook>/'''

SETUP = '''import semcathode as sc
cfg = sc.load_config(profile, config or None, {"data.data_dir": data_dir} if data_dir else None)
out = sc.NotebookOutputs(out_dir, "{name}")
cfg.profile, sc.config_hash(cfg)'''

NOTEBOOKS = {
    "01_data": [
        ("md", "# 01 · Data: SEM micrographs in, leakage-safe splits out\n\n"
               "Index the micrographs into a validated manifest (labels, instrument metadata, data-bar "
               "crop, hashes), split them by blocks of consecutive frames, and look at what we have."),
        ("code", "manifest = sc.prepare_splits(sc.build_manifest(cfg), cfg)\nsc.write_manifest(manifest, out.dir / 'manifest.csv')\nmanifest.head()"),
        ("md", "## Counts per class, domain and session"),
        ("code", "counts = sc.count_table(manifest)\nout.table(counts, 'class_counts', 'Images per class (each KAIST class is one imaging session)', section='Dataset summary')\nout.figure(sc.plot_class_counts(manifest, hue='domain'), 'class_counts', 'Images per class and domain', section='Dataset summary')\ncounts"),
        ("code", "out.text('Target domain', sc.target_domain_note(cfg))\nprint(sc.target_domain_note(cfg))"),
        ("md", "## One bar-cropped example per class"),
        ("code", "out.figure(sc.plot_examples(manifest.drop_duplicates('label')), 'examples', 'One micrograph per class, data bar removed (scale bar from the instrument pixel size)', section='Examples')"),
        ("md", "## Pixel size and data bar"),
        ("code", "px = sc.pixel_size_table(manifest)\nout.table(px, 'pixel_size', 'Pixel size from the instrument metadata, frame size and data-bar crop', section='Pixel size and data bar')\npx"),
        ("md", "## Splits (groups of consecutive frames never straddle train/valid/test)"),
        ("code", "sc.check_no_group_leak(manifest)\nsplits = sc.split_table(manifest)\nout.table(splits, 'splits', 'Images per class, domain and split', section='Splits')\nsplits"),
        ("md", "## Duplicates"),
        ("code", "dups, dup_warnings = sc.duplicate_report(manifest)\nout.table(dups, 'duplicates', f'{len(dups)} exact or near-duplicate pairs; {len(dup_warnings)} cross a split or domain', section='Duplicates', show=False)\nout.text('Duplicates', sc.duplicate_note(dups, dup_warnings))\nprint(sc.duplicate_note(dups, dup_warnings))"),
        ("code", "summary = sc.data_summary(manifest)\nout.json(summary, 'summary')\nsc.write_attribution(cfg, out_dir)\nout.save(summary)\nsummary"),
    ],
}

NOTEBOOKS["02_pretrain"] = [
    ("md", "# 02 · Stage 1: pretrain on the data-rich source domain\n\n"
           "EfficientNet (timm) with discriminative fine-tuning: head first, then all layers with learning "
           "rates spread over depth. One model per seed, cached and reused by every later arm."),
    ("code", "study = sc.load_study(cfg, out_dir)\nstage1 = {seed: sc.train_stage1(study.items, cfg, seed, study.classes) for seed in cfg.protocol.seeds}"),
    ("md", "## Training curves"),
    ("code", "hist = sc.stack_histories(stage1)\nout.table(hist, 'history', 'Per-epoch history of every seed', section='Training', show=False)\nout.figure(sc.plot_history(hist), 'training_curves', 'Stage-1 training curves per seed', section='Training')"),
    ("md", "## Source test metrics"),
    ("code", "s1_results, s1_preds = sc.evaluate_models(stage1, study.rows('source', 'test'), study.classes)\ns1_summary = sc.summarize_runs(s1_results.assign(arm='stage1'), n_boot=cfg.evaluate.n_boot)\nout.table(s1_summary, 'source_test_summary', 'Stage-1 model on the source test split: mean, std and 95% bootstrap CI over seeds', section='Source test metrics')\ns1_summary"),
    ("code", "lo, hi = sc.image_bootstrap_ci(s1_preds.label, s1_preds.pred, study.classes, n_boot=cfg.evaluate.n_boot)\nout.text('Source test metrics', f'Pooled over seeds, 95% image-bootstrap CI of the source-test macro-F1: [{lo:.3f}, {hi:.3f}] ({len(s1_preds)} predictions).')\nout.figure(sc.plot_confusions(s1_preds.assign(arm='stage1'), study.classes), 'source_confusion', 'Stage-1 confusion on the source test split (row-normalised, all seeds)', section='Source test metrics')"),
    ("md", "## Baseline that fine-tuning must beat: a linear probe on frozen ImageNet features"),
    ("code", "probe = sc.linear_probe_report(study, cfg)\nout.table(probe, 'linear_probe', 'Logistic regression on frozen backbone features', section='Linear-probe baseline')\nout.text('Linear-probe baseline', sc.probe_verdict(s1_summary, probe))\nprint(sc.probe_verdict(s1_summary, probe))"),
    ("md", "## Export (safetensors + JSON) and provenance"),
    ("code", "first = stage1[cfg.protocol.seeds[0]]\nmodel_path = sc.export_trained(first, out.dir / 'model.safetensors', cfg, study.classes, metrics=s1_results.iloc[0].to_dict())\nout.text('Backbone and weights', sc.provenance_note(first.weights_info))\nout.json(first.weights_info, 'weights_provenance')\nprint(sc.provenance_note(first.weights_info))"),
    ("code", "out.json(s1_results.to_dict(orient='records'), 'metrics')\nout.table(s1_results, 'source_test_per_seed', section=None)\nout.save({'source_test_macro_f1': s1_summary.to_dict(orient='records'), 'linear_probe': probe.to_dict(orient='records'), 'weights': first.weights_info})"),
]

NOTEBOOKS["03_finetune"] = [
    ("md", "# 03 · Stage 2: fine-tune on the data-poor target domain\n\n"
           "Arms: Pre+FT with targeted oversampling or a class-weighted loss, FT-only (ImageNet to target), "
           "Scratch+FT and Pretrain-only (the stage-1 model evaluated on the target)."),
    ("code", "study = sc.load_study(cfg, out_dir)\nout.text('Target domain', sc.target_domain_note(cfg))\nout.figure(sc.plot_domain_pair(study.manifest[study.manifest.label.isin(study.classes)]), 'source_vs_target', 'Source images and their simulated-shift target counterparts', section='Target domain')\nprint(sc.target_domain_note(cfg))"),
    ("code", "results, preds, models = sc.run_arms(study.items, cfg, study.classes, keep=cfg.cam.arms)\nout.table(results, 'arm_results', 'One row per arm and seed: metrics on the target test split', section=None)\nout.table(preds, 'predictions', section=None)"),
    ("md", "## Headline table (shaped like the paper's)"),
    ("code", "table = sc.paper_table(results, study.classes, n_boot=cfg.evaluate.n_boot)\nout.table(table.reset_index(), 'paper_table', 'Target test split: arms x accuracy, macro-F1 and per-class F1, mean ± std [95% bootstrap CI over seeds]', section='Headline results')\nout.text('Headline results', sc.target_domain_note(cfg))\ntable"),
    ("code", "out.figure(sc.plot_bars(results, x='arm', y='macro_f1', title='Target macro-F1 per arm (mean and 95% CI over seeds)'), 'arm_macro_f1', 'Target macro-F1 per arm', section='Headline results')\nout.figure(sc.plot_confusions(preds, study.classes), 'confusion', 'Row-normalised confusion matrices on the target test split, summed over seeds', section='Confusion matrices')"),
    ("code", "exported = sc.export_models(models, out.dir, cfg, study.classes, seed=cfg.protocol.seeds[0])\nout.json({k: str(v) for k, v in exported.items()}, 'exported_models')\nout.save({'arms': sc.summarize_runs(results, n_boot=cfg.evaluate.n_boot).to_dict(orient='records')})"),
]

NOTEBOOKS["04_ablation"] = [
    ("md", "# 04 · Ablation, statistics and validity checks\n\n"
           "Arms x imbalance strategies x seeds with confidence intervals and paired tests; then what the "
           "paper does not check: a shortcut baseline, session confounding, robustness to acquisition shifts, "
           "and the data-poor learning curve (also on NCM523, a real new domain)."),
    ("code", "study = sc.load_study(cfg, out_dir)\nresults = sc.read_table(out_dir, '03_finetune', 'arm_results')\nsummary = sc.summarize_runs(results, n_boot=cfg.evaluate.n_boot)\nout.table(summary, 'arm_summary', 'Arms: mean, std and 95% bootstrap CI over seeds (target test split)', section='Statistics over seeds')\nsummary"),
    ("code", "paired = sc.paired_table(results, reference='pre_ft_oversample')\nout.table(paired, 'paired_tests', 'Paired comparison against Pre+FT (oversample) over seeds (Wilcoxon signed-rank)', section='Statistics over seeds')\npaired"),
    ("md", "## Shortcut baseline: can the class be predicted without morphology?"),
    ("code", "shortcut, verdict = sc.shortcut_study(study, cfg)\nout.table(shortcut, 'shortcut', 'Logistic regression on grey-level histogram, mean, std and instrument settings (no morphology), same splits as the CNN', section='Shortcut and confounds')\nout.text('Shortcut and confounds', verdict['message'])\nout.text('Shortcut and confounds', sc.session_check(study.manifest)['message'])\nout.table(sc.session_probe(study, cfg), 'session_probe', 'Session-aware evaluation (linear probe; classes with two or more sessions only)', section='Shortcut and confounds')\nprint(verdict['message'])\nshortcut"),
    ("code", "norm = sc.normalisation_ablation(study, cfg, cfg.validity.ablation_seeds)\nout.table(sc.summarize_runs(norm, group='normalisation', n_boot=cfg.evaluate.n_boot), 'normalisation_ablation', 'Stage-1 CNN on the source test split with dataset vs per-image normalisation', section='Shortcut and confounds')"),
    ("md", "## Robustness to acquisition shifts"),
    ("code", "v = cfg.validity\nrobust = sc.robustness_study(study, cfg, v.robustness_arms, cfg.protocol.seeds, v.robustness_kinds, v.robustness_severities)\nout.table(robust, 'robustness', section=None)\nout.figure(sc.plot_curves(robust, x='severity', y='macro_f1', hue='arm', col='kind', title='Target macro-F1 vs shift severity'), 'robustness', 'Macro-F1 against the severity of each acquisition shift (mean and 95% CI over seeds)', section='Acquisition-shift robustness')"),
    ("md", "## The data-poor learning curve"),
    ("code", "curve = sc.learning_curve(study.items, cfg, study.classes, v.learning_curve_sizes, v.learning_curve_arms, v.learning_curve_seeds)\nout.table(curve, 'learning_curve', section=None)\nout.figure(sc.plot_curves(curve, x='n_per_class', y='macro_f1', hue='arm', logx=True, title='Target macro-F1 vs target images per class'), 'learning_curve', 'Target macro-F1 against target train images per class (group-aware subsets of the train split)', section='Data-poor learning curve')\nout.text('Data-poor learning curve', sc.curve_note(curve))"),
    ("code", "new = sc.new_domain_curve(study, cfg, v.new_domain_sizes, v.learning_curve_seeds)\nout.table(new, 'new_domain_curve', section=None)\nif len(new): out.figure(sc.plot_curves(new, x='n_per_class', y='macro_f1', hue='arm', title='NCM523 (real new domain): from stage 1 vs from ImageNet'), 'new_domain_curve', 'NCM523, a composition never seen in stage 1: macro-F1 against train images per class', section='Real new domain: NCM523')"),
    ("code", "out.save({'shortcut_warning': verdict['warn'], 'arms': summary.to_dict(orient='records')})"),
]

NOTEBOOKS["05_gradcam"] = [
    ("md", "# 05 · Grad-CAM: what does the model look at?\n\n"
           "CAM grids per class for the chosen arms, a quantitative check (CAM energy on particle boundaries and "
           "crack-like lines vs a uniform map; deletion curves vs random order), a static gallery, and the "
           "interactive explorer (live in JupyterLab, inert under papermill)."),
    ("code", "study = sc.load_study(cfg, out_dir)\nmodels = sc.load_run_models(out_dir, cfg.cam.arms)\nsample = sc.cam_sample(study.manifest, study.classes, per_class=cfg.cam.per_class)\nrecords, grids = sc.cam_study(models, sample, out.dir, method=cfg.cam.method, steps=cfg.cam.deletion_steps, opacity=cfg.cam.opacity)"),
    ("code", "for arm, fig in grids.items():\n    out.figure(fig, f'cam_grid_{arm}', f'{cfg.cam.method} overlays, {arm}: target test micrographs per class', section='CAM grids')"),
    ("md", "## Is the model looking at the particles?"),
    ("code", "quant = sc.cam_quant_table(records)\nout.table(quant, 'cam_quant', 'Share of CAM energy on particle boundaries / crack-like lines vs the area they cover (ratio 1 = uniform map), and deletion AUC (most-attended pixels first vs random order)', section='Quantitative CAM check')\nout.text('Quantitative CAM check', sc.cam_note(quant))\nquant"),
    ("md", "## Gallery and explorer"),
    ("code", "out.table(records, 'cam_records', section=None)\ngallery = sc.write_gallery(out.dir, records)\nout.text('Gallery', f'Static gallery of every overlay, misclassified first: [gallery.html](05_gradcam/{gallery.name})')\nsc.explorer_for(records, models, study.classes)"),
    ("code", "out.save({'cam_quant': quant.to_dict(orient='records')})"),
]


def build(name: str, cells: list) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells.append(cells[0][1] and new_markdown_cell(cells[0][1]))
    p = new_code_cell(PARAMS)
    p.metadata["tags"] = ["parameters"]
    nb.cells.append(p)
    nb.cells.append(new_code_cell(SETUP.replace("{name}", name)))
    for kind, src in cells[1:]:
        nb.cells.append(new_markdown_cell(src) if kind == "md" else new_code_cell(src))
    return nb


if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(name, cells), HERE / f"{name}.ipynb")
        print("wrote", name)
