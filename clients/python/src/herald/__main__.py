from herald._cli import main

main()
