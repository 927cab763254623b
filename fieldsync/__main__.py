from fieldsync.cli.main import main

main()
