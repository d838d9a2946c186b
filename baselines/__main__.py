from baselines.evaluate import main

raise SystemExit(main())
