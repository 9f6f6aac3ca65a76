"""Child process for test_files_that_move.py: opens the .comic file argv[1] as a document, prints
the folder of its session cache, then waits for a line on stdin (the parent kills it, or lets it
exit, while the document is open)."""

import sys

from comic_studio.core.document import Document


def main() -> None:
    doc = Document.open(sys.argv[1])
    print(doc.assets.cache.folder, flush=True)
    sys.stdin.readline()


if __name__ == "__main__":
    main()
