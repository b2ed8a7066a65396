"""io — files and data: serialization.py (tg.save / tg.load, plain .npz) and data.py (synthetic sequence tasks)."""
