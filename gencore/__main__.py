from gencore.cli import main

main()
