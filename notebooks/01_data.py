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
# # 01 · Data: SEM micrographs in, leakage-safe splits out
#
# Index the micrographs into a validated manifest (labels, instrument metadata, data-bar crop, hashes), split them by blocks of consecutive frames, and look at what we have.

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE). The same names are used by `semcathode run`.
profile = "smoke"        # smoke | demo | paper: the configuration profile
config = ""              # YAML file overriding the profile (empty: none)
data_dir = ""            # folder of micrographs (empty: the dataset of the profile)
out_dir = "../reports/notebook-run"   # run folder; this notebook writes into out_dir/<notebook>/

# %%
import semcathode as sc
cfg = sc.load_config(profile, config or None, {"data.data_dir": data_dir} if data_dir else None)
out = sc.report.NotebookOutputs(out_dir, "01_data", **sc.pipeline.report_roots(cfg))
cfg.profile, sc.config.config_hash(cfg)

# %%
manifest = sc.data.prepare_splits(sc.data.build_manifest(cfg.data, sc.config.cache_root(cfg)), cfg.data, cfg.target)
sc.data.write_manifest(manifest, out.run_dir / sc.pipeline.MANIFEST)
manifest.head()

# %% [markdown]
# ## Counts per class, domain and session

# %%
counts = sc.data.count_table(manifest)
out.table(counts, 'class_counts', 'Images per class (each KAIST class is one imaging session)', section='Dataset summary')
out.figure(sc.report.plot_class_counts(manifest, hue='domain'), 'class_counts', 'Images per class and domain', section='Dataset summary')
counts

# %%
out.text('Target domain', sc.report.target_domain_note(cfg.target))
print(sc.report.target_domain_note(cfg.target))

# %% [markdown]
# ## One bar-cropped example per class

# %%
out.figure(sc.report.plot_examples(manifest.drop_duplicates('label')), 'examples', 'One micrograph per class, data bar removed (scale bar from the instrument pixel size)', section='Examples')

# %% [markdown]
# ## Pixel size and data bar

# %%
px = sc.data.pixel_size_table(manifest)
out.table(px, 'pixel_size', 'Pixel size from the instrument metadata, frame size and data-bar crop', section='Pixel size and data bar')
px

# %% [markdown]
# ## Splits: per session train | pre-tail (valid) | tail by frame, frame blocks inside (a block never straddles two splits)

# %%
sc.data.check_no_group_leak(manifest)
splits = sc.data.split_table(manifest)
out.text('Splits', sc.report.split_note(cfg.data))
out.table(splits, 'splits', 'Images per class, domain and split (valid: the pre-tail when the profile has one)', section='Splits')
print(sc.report.split_note(cfg.data))
splits

# %% [markdown]
# ## Duplicates

# %%
dups, dup_warnings = sc.data.duplicate_report(manifest)
out.table(dups, 'duplicates', f'{len(dups)} exact or near-duplicate pairs; {len(dup_warnings)} cross a split or domain', section='Duplicates', show=False)
out.text('Duplicates', sc.report.duplicate_note(dups, dup_warnings))
print(sc.report.duplicate_note(dups, dup_warnings))

# %% [markdown]
# ## Particle morphology in µm
#
# Every micrograph segmented into secondary particles (scikit-image: denoise, threshold, distance transform, marker-based watershed, every length in µm) and measured: size (D10/D50/D90), shape (circularity, solidity), fines, boundary density and surface texture. The same rows the network sees (data bar cut, target rows with their simulated shift).

# %%
measures = sc.morphology.measure_manifest(manifest, cfg.morphology, pixel_size_um=cfg.preprocess.pixel_size_um, cache_dir=sc.config.cache_root(cfg) / 'morphology', workers=None, log=print)
out.table(measures, 'measures', 'Per-micrograph morphology (lengths in µm; settings in config.yaml, morphology)', section='Morphology', show=False)
classes = sc.data.schema_from_config(cfg.data).classes
out.figure(sc.report.plot_measures(measures, classes), 'measures', 'Per-micrograph measures per class (source domain): D50 by number, circularity, share of fines, boundary length per area', section='Morphology')

# %%
measure_summary = sc.study.measure_summary(measures, classes, n_boot=cfg.evaluate.n_boot)
out.table(measure_summary, 'measure_summary', 'Per class: mean of each measure over its micrographs with a 95% bootstrap interval (micrographs resampled)', section='Morphology')
out.text('Morphology', sc.report.measures_note(measure_summary, cfg.morphology))
print(sc.report.measures_note(measure_summary, cfg.morphology))
measure_summary.pivot(index='label', columns='measure', values='mean').round(3)

# %%
out.figure(sc.report.plot_outlines(manifest[manifest.domain == 'source'].drop_duplicates('label'), cfg.morphology, cfg.preprocess.pixel_size_um), 'outlines', 'Segmented particle outlines on one micrograph per class (a 120 µm square at full resolution; red: in the size statistics, yellow: cut by the border)', section='Morphology')

# %%
summary = sc.data.data_summary(manifest)
out.json(summary, 'summary')
sc.data.write_attribution(cfg.data, out_dir)
out.save(summary)
summary
