from lai.cli import main

raise SystemExit(main())
