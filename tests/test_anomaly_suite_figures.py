"""The README's anomaly-suite figures come from the committed JSON of the measured run: the
suite's own report of that JSON (its LODO choices included) must print them, and the README
must quote them. A change to the choice or report code that moves a figure fails here."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "anomaly_suite-2026-11-29-knn"

# printed line of the report -> the README text that quotes it
FIGURES = {
    "| elbo (today) | 0.943 | 0.472 (1 vs 8) |": "| 0.943 | 0.472 (1 vs 8) | 0.872 | 0.416 (1 vs 8) |",
    "| ratio | 0.964 | 0.831 (9 vs 4) |": "| 0.964 | 0.831 (9 vs 4) | **0.899** | 0.559 (3 vs 1) |",
    "LODO mean 0.980, worst pairing 0.894": "| **0.980** | **0.894** (8 vs 9) | 0.880 | **0.611** (0 vs 9) |",
    "confirmation of the 8x8 pick (ratio+knn): mean 0.880, worst pairing 0.611 (0 vs 9)": "0.899 → 0.880",
    "| ratio | 0.899 | 0.559 (3 vs 1) |": "0.559 → 0.611",
    "Default picked on all 7 datasets: latent=16,epochs=auto + elbo": "| mean | | **0.883**/0.52 | 0.893/0.52 |",
    "| mean | | **0.883/0.52** | **0.893/0.52** | **0.808/0.52** | **0.841/0.49** | **0.747/0.32** | **0.872/0.48**":
        "KNN is next (0.872)",
    "| mean | | **0.726/0.44** | **0.772/0.45** | **0.680/0.30** | **0.648/0.29** | **0.729/0.43**":
        "| mean | | 0.726/0.44 | **0.772**/0.45 | 0.680/0.30 |",
}


def test_the_readme_quotes_what_the_committed_suite_run_reports():
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "anomaly_suite.py"), "--summarise", str(RESULTS)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    readme = (ROOT / "README.md").read_text()
    for printed, quoted in FIGURES.items():
        assert printed in result.stdout, printed
        assert quoted in readme, quoted


def summarised(*args: str) -> str:
    result = subprocess.run([sys.executable, *map(str, args), "--summarise"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def assert_quoted(printed: str, lines: dict[str, str]) -> None:
    """Each line (printed by a bench's --summarise) is printed, and its figure quoted in the README."""
    readme = (ROOT / "README.md").read_text()
    for line, quoted in lines.items():
        assert line in printed, line
        assert quoted in readme, quoted


def test_the_readme_quotes_the_committed_tables_knobs_run():
    printed = summarised(ROOT / "bench" / "anomaly_tables_knobs.py", "--out",
                         ROOT / "bench" / "results" / "anomaly_tables_knobs-2026-11-29")
    assert_quoted(printed, {  # printed -> quoted
        "| mean | 0.893 / 0.884 / 0.883 / 0.891 | 0.889 / 0.891 / 0.892 | 0.881 | 0.884 | (0.837) |":
            "seeds 1–3 give means of 0.884, 0.883 and 0.891",
        "| iris | 0.978 / 0.973 / 0.965 / 0.968 | 0.970 / 0.965 / 0.965 | 0.985 | 0.955 | 0.985-0.992 (0.989) |":
            "leaves iris at 0.965–0.970",
        "| breast-cancer | 0.981 / 0.980 / 0.979 / 0.983 | 0.980 / 0.980 / 0.980 | 0.978 | 0.978 | 0.981-0.985 (0.983) |":
            "seeds range over 0.985–0.992 and 0.981–0.985",
    })


def test_the_readme_quotes_the_committed_digits_latent_run():
    printed = summarised(ROOT / "bench" / "anomaly_digits_latent.py", "--out",
                         ROOT / "bench" / "results" / "anomaly_digits_latent-2026-11-29", "--suite", RESULTS)
    assert_quoted(printed, {
        "| 8 | ratio | 0.977 | 0.852 | 0.810 | 0.556 |": "the 8×8 runs give `ratio` 0.977 mean and 0.852 worst",
        "8x8 LODO mean 0.977, worst 0.852": "(LODO mean 0.977, worst 0.852)",
        "pick on all ten 8x8 classes: latent 16, ratio+knn": "still picks latent 16 with `ratio+knn`",
        "28x28 held-out 3, mean pairing AUC of ratio (the images default): latent 8 0.784, latent 16 0.792":
            "3s score 0.784 with `ratio` (0.792 at latent 16)",
        "28x28 held-out 8, mean pairing AUC of ratio (the images default): latent 8 0.836, latent 16 0.836":
            "8s 0.836 (0.836)",
    })
