"""Raw frames as Hugging Face ``datasets``: storage, loading, sources and splits.

    arrow     uint16 frames and masks as Array2D columns, the ``raw_isp`` format, batch loading
    archive   safe zip extraction, verified downloads, local layouts
    splits    leak-free, stratified train / validation / test splits and k folds
"""
