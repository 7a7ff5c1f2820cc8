"""The paper's generative augmentation (Che et al., ICPRAM 2025).

captions  BLIP-2 captions            prompts   caption | classes | appended (Class-Prompt Appending)
priors    line art / Canny / sketch, label prior, Visual Prior Blending
balance   Algorithm 1 (class balancing) and its plan
pipelines SDXL T2I-Adapter / ControlNet / inpainting generators (diffusers)
clip      CLIP score, the CLIP post-filter, FID of a synthetic set
tiny      tiny random-weight models built from configs (demo and tests)
hub       model ids vs the offline Hugging Face cache
"""
