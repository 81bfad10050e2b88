from semcathode.data._manifest import index_folder
from semcathode.data._splits import assign_groups, split_groups
from semcathode.data._summary import count_table, data_summary, duplicate_report, pixel_size_table, split_table
from semcathode.report._notes import duplicate_note


def test_tables(synthetic_root):
    df = split_groups(assign_groups(index_folder(synthetic_root), 2), 0.25, 0.25)
    c = count_table(df)
    assert c["images"].sum() == len(df) and (c["sessions"] == 1).all()
    p = pixel_size_table(df)
    assert (p["width"] == 160).all() and (p["missing_pixel_size"] == 0).all()
    s = split_table(df)
    assert s.filter(like="source/").sum(axis=1).tolist() == c["images"].tolist()
    summ = data_summary(df)
    assert summ["n_images"] == len(df) and summ["groups"] == df["group"].nunique()


def test_duplicate_report_flags_cross_split(synthetic_root, tmp_path):
    import shutil

    root = tmp_path / "d"
    shutil.copytree(synthetic_root, root)
    src = next((root / "NCM622_cycled").glob("*.png"))
    shutil.copy(src, root / "NCM622_cycled" / "dup_9999.png")
    df = index_folder(root)
    df["split"], df["domain"], df["group"] = "train", "source", range(len(df))
    df.loc[df["path"].str.endswith("dup_9999.png"), "split"] = "test"
    dups, warns = duplicate_report(df)
    assert (dups["kind"] == "exact").sum() == 1 and len(warns) >= 1
    assert "Warning" in duplicate_note(dups, warns)
    assert "No exact" in duplicate_note(dups.iloc[:0], [])
