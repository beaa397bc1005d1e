"""A room: this laptop serves its models to the others on the local network
(``triptych serve``, the window's "Serve to the room"). :mod:`.supervisor` starts and
stops it, :mod:`.front` is the door students reach, :mod:`.limits` shares the model server
fairly, :mod:`.hubfiles` hands out model files as the Hub does, :mod:`.activity` records
what happened. The student's side (the key, the address, finding a room) is
:mod:`desktop_app.models.room`."""
