from cryobench.cli import main

main()
