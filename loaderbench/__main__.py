from loaderbench.cli import main

raise SystemExit(main())
