"""The sweep's report: figures per task (`figures.py`) and one self-contained HTML page (`html.py`)."""
