import sys

from glimpse.cli import main

sys.exit(main())
