"""The web process may import app.quality to draw stored results: that must stay light."""

import json
import pkgutil
import subprocess
import sys

import app.quality

HEAVY = ("sklearn", "crowdkit", "pandas", "scipy", "krippendorff", "nltk", "torch", "transformers")
MODULES = sorted(m.name for m in pkgutil.iter_modules(app.quality.__path__))


def loaded_after(statement: str) -> set[str]:
    code = f"import sys, json\n{statement}\nprint(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_importing_every_quality_module_loads_no_heavy_library() -> None:
    assert {"alpha", "kappa", "leaderboard", "svg", "trust"} <= set(MODULES)
    loaded = loaded_after("\n".join(f"import app.quality.{m}" for m in MODULES))
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_the_chart_module_needs_no_numpy() -> None:
    assert "numpy" not in loaded_after("import app.quality.svg")


def test_the_web_app_loads_none_of_the_statistics_libraries() -> None:
    loaded = loaded_after("import app.main")
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
