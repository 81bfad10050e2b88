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
# # 05 · Grad-CAM: what does the model look at?
#
# CAMs at particle scale: every tile of a micrograph's grid (at the model's µm/px) gets its own CAM for the micrograph's predicted class, and the tile CAMs are stitched into one map over the full-resolution micrograph. Then a quantitative check per tile (CAM energy on particle boundaries and crack-like lines vs the area they cover; deletion curves vs random order), a static gallery, and the interactive explorer (live in JupyterLab, inert under papermill).

# %% tags=["parameters"]
# Parameters (papermill: -p NAME VALUE). The same names are used by `semcathode run`.
profile = "smoke"        # smoke | demo | paper: the configuration profile
config = ""              # YAML file overriding the profile (empty: none)
data_dir = ""            # folder of micrographs (empty: the dataset of the profile)
out_dir = "../reports/notebook-run"   # run folder; this notebook writes into out_dir/<notebook>/

# %%
import semcathode as sc
cfg = sc.load_config(profile, config or None, {"data.data_dir": data_dir} if data_dir else None)
out = sc.report.NotebookOutputs(out_dir, "05_gradcam", **sc.pipeline.report_roots(cfg))
cfg.profile, sc.config.config_hash(cfg)

# %%
run = sc.open_run(out_dir)  # earlier results, read by name
study = sc.load_study(sc.config.study_settings(cfg), run.manifest)
models = run.models(cfg.cam.arms)
sample = sc.explain.cam_sample(study.manifest, study.classes, per_class=cfg.cam.per_class)
records, grids = sc.explain.cam_study(models, sample, out.dir, method=cfg.cam.method, steps=cfg.cam.deletion_steps, opacity=cfg.cam.opacity, layer=cfg.cam.layer, morphology=cfg.morphology)

# %%
for arm, fig in grids.items():
    out.figure(fig, f'cam_grid_{arm}', f'{cfg.cam.method} overlays stitched from the tile CAMs, {arm}: target test micrographs per class', section='CAM grids')

# %% [markdown]
# ## Is the model looking at the particles?

# %%
quant = sc.explain.cam_quant_table(records)
out.table(quant, 'cam_quant', 'Share of CAM energy on particle boundaries / crack-like lines vs the area they cover (ratio 1 = uniform map), and deletion AUC (most-attended pixels first vs random order)', section='Quantitative CAM check')
out.text('Quantitative CAM check', sc.report.cam_note(quant))
quant

# %% [markdown]
# ## The CAM against the segmented particles
#
# The same micrographs segmented into particles (notebook 01's morphology settings): the stitched CAM's energy on a band of fixed µm width around the particle outlines, on the particle interiors, on the fines and on the background, each against its share of the area.

# %%
on_particles = sc.explain.cam_particle_table(records)
out.table(on_particles, 'cam_particles', f'Share of CAM energy and of area on particle boundaries (a {cfg.morphology.band_um:g} µm band around the outlines), interiors, fines (< {cfg.morphology.fines_um:g} µm) and background; ratio = energy / area (1 = no preference)', section='CAM on particles')
out.text('CAM on particles', sc.report.cam_particle_note(on_particles))
print(sc.report.cam_particle_note(on_particles))
on_particles

# %% [markdown]
# ## Gallery and explorer

# %%
out.table(records, 'cam_records', section=None)
gallery = sc.explain.write_gallery(out.dir, records)
out.text('Gallery', f'Static gallery of every overlay, misclassified first: [gallery.html]({out.rel(gallery)})')
sc.explain.explorer_for(records, models, study.classes, morphology=cfg.morphology)

# %%
out.save({'cam_quant': quant.to_dict(orient='records'), 'cam_particles': on_particles.to_dict(orient='records')})
