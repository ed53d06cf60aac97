from warmup.cli import main

main()
