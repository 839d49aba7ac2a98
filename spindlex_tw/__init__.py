"""spindlex_tw: an SSH-2 and SFTP server library on Twisted with the SpindleX server API."""
