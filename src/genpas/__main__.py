from genpas.cli import main

main()
