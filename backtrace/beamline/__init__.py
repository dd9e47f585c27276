"""The beam line: geometry model and its schema checks, compilation for the
C navigator, magnetic fields, materials and PUMAS physics, views, and the
built :class:`~backtrace.beamline.line.line.BeamLine` every stage shares.
"""
