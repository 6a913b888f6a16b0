import sys

from camvidseg.cli import main

sys.exit(main())
