from classgap.cli import main

main()
