"""Key custody: the one process that holds the evidence key, the tickets it decrypts for, and what the web
app and the commands build from the plaintext it streams (playback media, court packages).

* :mod:`.ticket` -- ``issue_ticket(office, access)`` after ``Access.open``; ``verify_ticket`` in the custodian.
* :mod:`.custodian` -- the service behind ``bodycam-office custodian`` (its own user, a Unix socket).
* :mod:`.client` -- ``CustodianClient(socket).open_segment(ticket, stem)``: the plaintext as a stream.
* :mod:`.media` -- per segment an fMP4 with its place on the incident's timeline, for Media Source Extensions.
* :mod:`.package` -- ``court_package(...)``: a ZIP generator (MP4, sealed originals, chain-of-custody report).

Only the custodian holds the evidence key; everything else here runs in the web app's or a command's
process with the office key and no evidence key. Nothing here writes plaintext to disk.
"""
