"""The wrapped tools' native coordinate files, read into and written from RegionSets.

Every function here converts at the border between a tool's convention and lipobench's
(row, col) frame with the origin at the top-left corner (see :mod:`lipobench.regions`):

=========  =====================================  ==========================================
format     tool's coordinates                     in lipobench
=========  =====================================  ==========================================
``.box``   ``x y w h [score]``, (x, y) = box      ``col0 = x``; ``row0 = y``, or with
           corner with the smallest x and y in    ``flip_rows`` ``row0 = H - (y + h)``
           crYOLO's frame ("lower-left")
``.cbox``  STAR, ``_CoordinateX/_CoordinateY``    as ``.box``; ``_Confidence`` -> scores
           = same corner as ``.box``
``.star``  RELION ``_rlnCoordinateX/Y`` = centre  ``col = x``; ``row = y`` or ``H - y``
Topaz      ``image_name x_coord y_coord [score]`` ``col = x + 0.5``, ``row = y + 0.5``
           integer pixel indices, top-left        (the centre of pixel index i is i + 0.5)
CSV        boxes ``row0,col0,row1,col1``, or      as written (``row`` or ``H - row`` with
           centres ``row,col`` or CryoSegNet's    ``flip_rows``); ``X-Coordinate`` = col,
           ``X-Coordinate,Y-Coordinate``          ``Y-Coordinate`` = row
=========  =====================================  ==========================================

crYOLO's y counts from the bottom of the array crYOLO has read (1.9.9,
``preprocessing.parse_annotation``: ``box_ymin = img_size[1] - (y + h)``; ``predict.rescale``:
``y_ll = image_height - y * image_height - h / 2``), and crYOLO flips MRC arrays on reading
(``imagereader.read_mrc``: ``np.flipud``) while TIFF, PNG and JPEG stay as they are. The two
cancel for MRC: counted in the array lipobench reads (mrcfile's, unflipped), crYOLO's y is the
row from the top for MRC input and from the bottom for TIFF/PNG/JPEG input. Pass
``flip_rows=cryolo_flips_rows(image)`` for the file crYOLO reads.
crYOLO and RELION coordinates are continuous (a box's corner, a box's centre); Topaz's are
integer pixel indices, which is why only Topaz gets the half-pixel shift.

The CBOX layout crYOLO 1.9 writes, with its sources, is described in
:mod:`lipobench.formats.box`.

Malformed input raises :class:`~lipobench.errors.UserError` whose one-line message names the
file, the line and what was expected. Empty files and files without particles are valid and
give empty RegionSets (crYOLO writes such files with ``--write_empty``). Writers replace the
target atomically, so a failed write leaves no half-written file.

Modules, one per format family; import the names from this package:

- ``box``: EMAN/crYOLO ``.box`` and crYOLO ``.cbox`` (and :func:`cryolo_flips_rows`);
- ``star``: RELION coordinate ``.star`` files;
- ``topaz``: Topaz coordinate files;
- ``csvtable``: CSV tables of boxes or centres;
- ``_star`` (STAR syntax shared by ``.cbox`` and ``.star``) and ``_common`` (text, number and
  size checks shared by all) are private.
"""

from __future__ import annotations

from lipobench.formats.box import (
    CBOX_COLUMNS,
    cryolo_flips_rows,
    read_box,
    read_cbox,
    read_cbox_table,
    write_box,
    write_cbox,
)
from lipobench.formats.csvtable import CSV_BOX_COLUMNS, CSV_CENTRE_COLUMNS, read_region_csv
from lipobench.formats.star import read_star, read_star_centres, write_star
from lipobench.formats.topaz import read_topaz, write_topaz

__all__ = [
    "CBOX_COLUMNS",
    "cryolo_flips_rows",
    "read_box",
    "write_box",
    "read_cbox_table",
    "read_cbox",
    "write_cbox",
    "read_star_centres",
    "read_star",
    "write_star",
    "read_topaz",
    "write_topaz",
    "read_region_csv",
    "CSV_BOX_COLUMNS",
    "CSV_CENTRE_COLUMNS",
]
