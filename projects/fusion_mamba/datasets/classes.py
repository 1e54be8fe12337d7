"""Class names (in category-id order: id = index + 1) and palettes of the benchmarks.

The converters write categories in exactly this order, and the dataset classes declare it.
"""
LLVIP_CLASSES = ('person', )
M3FD_CLASSES = ('People', 'Car', 'Bus', 'Motorcycle', 'Lamp', 'Truck')
FLIR_ALIGNED_CLASSES = ('person', 'car', 'bicycle')
KAIST_CLASSES = ('person', )
DEMO_CLASSES = ('person', 'car', 'sign', 'animal')

PALETTES = {
    'person': (220, 20, 60),
    'People': (220, 20, 60),
    'car': (0, 0, 142),
    'Car': (0, 0, 142),
    'Bus': (0, 60, 100),
    'Motorcycle': (0, 0, 230),
    'Lamp': (250, 170, 30),
    'Truck': (0, 0, 70),
    'bicycle': (119, 11, 32),
    'sign': (250, 170, 30),
    'animal': (106, 0, 228),
}


def palette_of(classes: tuple) -> list:
    """RGB colours of ``classes`` for mmdet's visualiser."""
    return [PALETTES[name] for name in classes]
