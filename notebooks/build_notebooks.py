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
