import OverlayDaemon

await OverlaydCommand.start()
