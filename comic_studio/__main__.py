import sys

from comic_studio.cli import main

sys.exit(main())
