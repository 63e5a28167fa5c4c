import subprocess
import sys
from pathlib import Path

CLI = Path(sys.executable).parent / "vidsim"


def test_a_missing_query_file_is_named_with_its_folder_before_anything_loads(tmp_path):
    out = subprocess.run([CLI, "query", "clips/nope.mp4"], cwd=tmp_path, capture_output=True, text=True,
                         check=False)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "clips/nope.mp4: no such file" in out.stderr
    assert "no index" not in out.stderr  # checked before the library is looked for
