"""Child process for test_atomic.py: starts replacing argv[1] through ``atomic_path``, prints the
temporary file's path, then waits for a line on stdin before finishing the write (the parent
kills it, or lets it finish, while it holds its temporary file)."""

import sys

from comic_studio.core.atomic import atomic_path


def main() -> None:
    with atomic_path(sys.argv[1], "the test file") as tmp:
        tmp.write_bytes(b"partial")
        print(tmp, flush=True)
        sys.stdin.readline()
        tmp.write_bytes(b"complete")


if __name__ == "__main__":
    main()
