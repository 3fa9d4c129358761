"""Estimated audio-caption correspondences (Primus et al. 2024, sec. 3) and relevances (Xie et al. 2024).

similarities: a teacher embeds the train set; members: that dump's file format; ensemble: teacher sets and C-hat,
the mean of their similarities; targets: C-hat files and the batch blocks stage 2 trains on; relevance: Xie et al.
"""
