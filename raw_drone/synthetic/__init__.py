"""Synthetic Raw-Drone: aerial town scenes with cars as raw Bayer frames, and their 256x256 tiles.

The real Raw-Drone set (Zenodo, DOI 10.5281/zenodo.5235536) holds 12 raw frames of 3648x5472
pixels from a DJI Mavic 2 Pro (Hasselblad L1D-20c, Sony IMX183) hovering at 250 m, cut into
disjoint 256x256 tiles: 548 tiles with cars and a hand-drawn car mask (segmentation), 930 tiles
labelled car / no car (classification), each at seven intensity ratios. This package renders data
of the same kind from an explicit physical model:

1. **Layout** (world frame, 6 cm ground sampling distance, so 1 m = 16.7 px). A grid of roads
   (asphalt, sidewalks, dashed centre lines, edge lines, some zebra crossings, some kerb-side
   parking) cuts the ground into blocks; each block is a parking lot (rows of 5 m x 2.5 m stalls
   with painted lines, aisles, tree islands), a residential block (houses with gable, hip or flat
   roofs of several materials, driveways, gardens, pools, hedges, trees), a commercial block
   (large flat roof with rooftop units, skylights or solar panels, and a parking strip) or a park
   (meadow, paths, tree clusters, sports courts). Cars (about 4.5 m x 1.8 m, so about 75x30 px;
   compact, saloon, estate, SUV and van shapes) stand in stalls, driveways, traffic lanes and
   kerb-side bays, aligned with them up to a few degrees, in the colours of the car market
   (white, black, grey, silver, blue, red, ...). The whole layout is rotated by a random angle
   in the image. Everything follows from ``numpy.random.default_rng([seed, scene, 1])``.
2. **Materials and light.** Each surface has an R, G, B reflectance (linear sRGB primaries) with
   multi-scale texture; cars have body, windscreen, rear and side glass, a sloped shape and
   clear-coat reflections of the sky and, where the geometry lines up, of the sun (glints);
   tree crowns are domes of clumped foliage. Illumination is direct sunlight (elevation 35-62
   degrees, any azimuth) times ``cos`` of the incidence angle on the local surface normal, plus
   blue skylight; shadows come from ray marching a height map (buildings, trees, hedges, rooftop
   units, cars) toward the sun, so shadows darken to the skylight level. Beside a car the ground
   gets less skylight, the car's side hiding part of the sky (a wall of the body's height: half
   the sky at its foot, a tenth at 1 m), which darkens a rim around cars, most in shadow. A faint
   bluish haze adds path radiance. Edges finer than the PSF are drawn by area: a pixel on a
   car's outline, a window's edge (side windows are about 2 px wide) or a road marking (lines of
   0.12-0.15 m, 2-2.5 px) holds each surface in proportion to its share of the pixel, so thin
   slanted lines keep their width; the car mask keeps the pixel-centre rule.
3. **Optics.** The radiance is converted to camera RGB with the inverse of the drone camera's
   colour matrix and white balance (``raw_isp.CAMERAS["drone"]``), so that the ISP of this
   project with that preset reproduces the scene colours, and blurred by the Gaussian PSF of
   the datasheet (sigma 2.52 px).
4. **Sensor.** An RGGB Bayer filter keeps one channel per pixel (the sites of ``raw_isp.isp.cfa``;
   the blur is evaluated only at the kept sites, equal to ``raw_isp.isp.cfa.mosaic`` of the blurred
   image, which the tests check); a white
   Lambertian surface in full sun (60 degrees elevation) gets :data:`WHITE_FRACTION` of the
   full well, so bright roofs and white cars come close to but rarely reach saturation (sun
   glints on cars can). ``raw_isp.SENSORS["drone"].expose`` adds shot and read noise and
   digitises (12-bit codes left-justified to 16 bits, 8.448 DN per electron, black level 4096).
   Lower intensities thin the photons of the ratio-1.0 tile with ``scale_intensity``.

Tiling follows the real set: disjoint 256x256 tiles on a grid from the top-left corner (frame
rows and columns that do not fill a tile are unused). Segmentation keeps tiles with at least one
car pixel; classification takes a balanced set of car tiles (car fraction > 0.01) and no-car tiles
(fraction 0); tiles with a fraction in (0, 0.01] are neither. Which tiles are used is decided from
the car masks alone (:meth:`DroneSimulator.tile_index` renders no light), by a seeded ranking of
all tiles, and the examples come out in scene, row, column order.

Default scenes are 2560x3840 (the real 2:3 aspect; 10x15 = 150 tiles each) and the real
3648x5472 frames are available with ``height=3648, width=5472`` (14x21 tiles). Over 12 default
scenes of seed 0 there are 1800 tiles: 915 with a car pixel (807 above 0.01, 108 in (0, 0.01])
and 885 without; over seeds 0-11 the counts run from 874 to 1208 car tiles and 592 to 926
no-car tiles, well above the 548 and 465 the real sets need. (The synthetic town is denser in
cars than the real frames, where 548 of 3528 tiles hold cars.) Car-mask components have a median
length of about 77 px and width of about 31 px (75x30 px is 4.5 x 1.8 m).

Modules, in the order of the pipeline: ``constants`` (units, light, the real set's figures),
``materials``, ``records`` and ``layout`` (step 1), ``geometry`` and ``canvas`` (step 2),
``optics`` (steps 3 and 4), ``simulator`` (:class:`DroneSimulator`, tiling and noise) and
``seeds`` (the derived seeds of the noise).
"""

from raw_drone.tiling import MIN_CAR_FRACTION, TILE_SIZE, TileInfo

from .constants import (
    CLASS_NAMES,
    DEFAULT_FRAME_SHAPE,
    GSD_M,
    INTENSITIES,
    NUM_CLASSIFICATION_TILES,
    NUM_SCENES,
    NUM_SEGMENTATION_TILES,
    PSF_SIGMA_PX,
    REAL_FRAME_SHAPE,
    WHITE_FRACTION,
)
from .simulator import DroneSimulator

__all__ = [
    "DroneSimulator",
    "TileInfo",
    "INTENSITIES",
    "GSD_M",
    "PSF_SIGMA_PX",
    "TILE_SIZE",
    "REAL_FRAME_SHAPE",
    "DEFAULT_FRAME_SHAPE",
    "NUM_SCENES",
    "NUM_SEGMENTATION_TILES",
    "NUM_CLASSIFICATION_TILES",
    "MIN_CAR_FRACTION",
    "WHITE_FRACTION",
    "CLASS_NAMES",
]
