"""What kind of build MUSPEC_BINARY comes from (for tests the sanitizer build need not repeat)."""
import os


def sanitized_build():
    """True when MUSPEC_BINARY comes from a build configured with MUSPEC_SANITIZE=ON."""
    binary = os.environ.get("MUSPEC_BINARY", "")
    cache = os.path.join(os.path.dirname(os.path.dirname(binary)), "CMakeCache.txt")  # BUILD/tools/muspec
    try:
        with open(cache) as f:
            return "MUSPEC_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False
