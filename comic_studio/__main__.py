import sys

from comic_studio.app import main

sys.exit(main())
