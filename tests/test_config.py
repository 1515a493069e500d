"""Configuration: the profile stays torch-free."""



def test_building_a_profile_imports_no_torch():
    """Configuration and the shared facts stay torch-free (no import circle through the model)."""
    import subprocess
    import sys

    code = "import sys; from lai.config import load_profile; load_profile('paper'); import lai.facts, lai.tables; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=__import__("pathlib").Path(__file__).resolve().parent.parent)
    assert done.stdout.strip() == "False", done.stdout + done.stderr
