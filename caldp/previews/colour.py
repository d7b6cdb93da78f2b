"""Colour previews of single- and multi-visit mosaics (SVM/MVM) with two or more filters.

The filter-level drizzled products of one detector share one pixel grid; they
are grouped, ordered by the pivot wavelength of their filter, and combined:
red = longest, blue = shortest, green = the median filter (the mean of the two
middle ones when their number is even).  Each filter is scaled and stretched
like a grey image preview; pixels unusable in any filter are shown neutral grey.

Names: ``<prefix>_total_<ipppss>_<sfx>_color.jpg`` and
``..._color_thumb.jpg``; for MVM the layer (``all``, ``coarse-all``) takes the
place of the ``ipppss``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from caldp.previews import filters, images

log = logging.getLogger("caldp.previews")

# hst_<propid>_<visit>_<instrument>_<detector>_<filters>_<ipppss>_<drz|drc>
SVM_FILTER_PRODUCT_RE = re.compile(
    r"^(?P<prefix>hst_[0-9a-z]+_[0-9a-z]+_(?P<instrument>acs|wfc3)_(?P<detector>[a-z]+))"
    r"_(?P<filters>[0-9a-z-]+)_(?P<group>[a-z0-9]{6})_(?P<sfx>drz|drc)$",
    re.IGNORECASE,
)
# hst_skycell-pNNNNxXXyYY_<instrument>_<detector>_<filters>_<all|coarse-all>_<drz|drc>
MVM_FILTER_PRODUCT_RE = re.compile(
    r"^(?P<prefix>hst_skycell-p\d{4}x\d{2}y\d{2}_(?P<instrument>acs|wfc3)_(?P<detector>[a-z]+))"
    r"_(?P<filters>[0-9a-z-]+)_(?P<group>all|coarse-all)_(?P<sfx>drz|drc)$",
    re.IGNORECASE,
)


@dataclass
class ColourGroup:
    """The filter products that make one colour preview."""

    prefix: str
    group: str
    sfx: str
    members: list[tuple[float, Path]] = field(default_factory=list)  # (pivot, file)

    @property
    def name(self) -> str:
        return f"{self.prefix}_total_{self.group}_{self.sfx}_color"

    def outputs(self, out_dir: Path) -> tuple[Path, Path]:
        return out_dir / f"{self.name}.jpg", out_dir / f"{self.name}_thumb.jpg"


def parse_filter_product(path: Path) -> dict[str, str] | None:
    """The name fields of a filter-level SVM/MVM drizzled product, or None."""
    base = images.base_name(path)
    for regex in (SVM_FILTER_PRODUCT_RE, MVM_FILTER_PRODUCT_RE):
        m = regex.match(base)
        if m and m.group("filters").lower() != "total":
            return {k: v.lower() for k, v in m.groupdict().items()}
    return None


def colour_groups(products: list[Path]) -> list[ColourGroup]:
    """Groups of two or more filter products with known pivot wavelengths."""
    groups: dict[tuple[str, str, str], ColourGroup] = {}
    for path in products:
        fields = parse_filter_product(path)
        if fields is None:
            continue
        pivot = filters.filter_combination_pivot(
            fields["instrument"], fields["detector"], fields["filters"]
        )
        if pivot is None:
            log.warning(
                "%s: no pivot wavelength for filter %r: left out of the colour preview",
                path.name,
                fields["filters"],
            )
            continue
        key = (fields["prefix"], fields["group"], fields["sfx"])
        group = groups.setdefault(key, ColourGroup(*key))
        group.members.append((pivot, path))
    result = []
    for group in groups.values():
        group.members.sort(key=lambda member: (member[0], member[1].name))
        if len(group.members) >= 2:
            result.append(group)
    return result


def channel_files(group: ColourGroup) -> tuple[list[Path], list[Path], list[Path]]:
    """(red, green, blue) files: longest, median (one or two), shortest pivot wavelength."""
    files = [path for _pivot, path in group.members]
    n = len(files)
    green = [files[n // 2]] if n % 2 else [files[n // 2 - 1], files[n // 2]]
    return [files[-1]], green, [files[0]]


def make_colour_preview(group: ColourGroup, out_dir: Path, thumb_size: int) -> list[Path]:
    """Write the colour preview and its thumbnail for one group; return their paths."""
    red_files, green_files, blue_files = channel_files(group)
    cache: dict[Path, images.Rendered] = {}

    def rendered(path: Path) -> images.Rendered:
        if path not in cache:
            cache[path] = images.render_file(path, keep_codes=True)
        return cache[path]

    shapes = {rendered(p).pixels.shape for p in {*red_files, *green_files, *blue_files}}
    if len(shapes) != 1:
        raise ValueError(f"the filter images differ in size: {sorted(shapes)}")
    (shape,) = shapes
    rgb = np.empty((*shape, 3), dtype=np.uint8)
    invalid = np.zeros(shape, dtype=bool)
    neutrals = []
    for channel, files in enumerate((red_files, green_files, blue_files)):
        parts = [rendered(p) for p in files]
        if len(parts) == 1:
            rgb[..., channel] = parts[0].pixels
        else:
            total = parts[0].pixels.astype(np.uint16) + parts[1].pixels
            rgb[..., channel] = ((total + 1) // 2).astype(np.uint8)
        for part in parts:
            invalid |= part.codes == images.INVALID
        neutrals.extend(part.neutral for part in parts)
    rgb[invalid] = int(round(sum(neutrals) / len(neutrals)))
    full, thumb = group.outputs(out_dir)
    images.save_full_and_thumb(rgb, full, thumb, thumb_size)
    return [full, thumb]
