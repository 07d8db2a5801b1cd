import IngotCLI

IngotCommand.main()
