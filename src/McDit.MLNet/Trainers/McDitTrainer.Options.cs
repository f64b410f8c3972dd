using McDit.Torch.Diffusion;
using McDit.Torch.Models;
using McDit.Torch.Training;

namespace McDit.MLNet.Trainers;

public sealed partial class McDitTrainer
{
    /// <summary>
    /// Options of the diffusion transformer trainer (<c>mlContext.McDit().Trainers.DiffusionTransformer(options)</c>).
    /// The defaults are those of the project's method notes for small data: MC-DiT, mask ratio 0.5, AdamW at 1e-4,
    /// batch 64, weight EMA 0.999, no gradient clipping, 18 Heun sampling steps without guidance.
    /// </summary>
    public sealed class Options
    {
        // ------------------------------------------------------------------ columns and data

        /// <summary>
        /// The image column: an <c>MLImage</c> column (ImageAnalytics' <c>LoadImages</c>, Bgra32/Rgba32 pixels) or a
        /// known-size float vector in CHW order (for example from <c>ExtractPixels</c>).
        /// </summary>
        public string ImageColumnName = "Image";

        /// <summary>
        /// The class label column: a key type (1-based raw values; the class count comes from the key count) or a
        /// number holding a 0-based class index (then set <see cref="NumberOfClasses"/>). Null trains an unconditional model.
        /// </summary>
        public string? LabelColumnName = "Label";

        /// <summary>Number of classes C for a numeric label column; 0 takes it from the key type of the label column.</summary>
        public int NumberOfClasses;

        /// <summary>
        /// Channels C of the images: 0 takes them from the vector column's dimensions, or 3 (colour) for an MLImage
        /// column; 1 turns MLImages grey (luminance).
        /// </summary>
        public int Channels;

        /// <summary>Height H; 0 takes it from the vector column's dimensions or the image type. H must equal W.</summary>
        public int Height;

        /// <summary>Width W; 0 takes it from the vector column's dimensions or the image type. H must equal W.</summary>
        public int Width;

        /// <summary>
        /// The float input value that means black (−1 for the model). The default fits <c>ExtractPixels</c> with
        /// <c>scaleImage: 1f / 255</c>, which gives [0, 1]; use 0 and 255 for unscaled pixels, −1 and 1 for data already in
        /// the model's range. Not used for MLImage columns (0..255 is mapped to [−1, 1]).
        /// </summary>
        public float InputMinimum;

        /// <summary>The float input value that means white (+1 for the model); see <see cref="InputMinimum"/>.</summary>
        public float InputMaximum = 1f;

        /// <summary>Reject float inputs outside [<see cref="InputMinimum"/>, <see cref="InputMaximum"/>] (a mis-scaled column otherwise trains silently).</summary>
        public bool ValidateInputRange = true;

        /// <summary>
        /// Read every row once before the first training step to check it (NaN, vector size, image size, label range)
        /// and to count the rows, so bad data fails before any training. Turn off for very large data; each batch is
        /// then checked just before its own step.
        /// </summary>
        public bool ValidateDataBeforeTraining = true;

        /// <summary>
        /// Rows held by the shuffle pool when the data view cannot shuffle itself (<c>CanShuffle</c> false); such data is
        /// read through ML.NET's row-shuffling transform, which streams through a pool of this many rows.
        /// </summary>
        public int ShufflePoolSize = 1000;

        // ------------------------------------------------------------------ model

        /// <summary>The DiT preset, as "Tiny/2", "S/2", "DiT-B/4" …; ignored when <see cref="ModelConfig"/> is set.</summary>
        public string Model = "Tiny/2";

        /// <summary>
        /// An explicit network shape for tests and advanced use (widths, depths, heads, decoder). Its InputSize, InChannels
        /// and NumClasses are replaced by those of the data.
        /// </summary>
        public DiffusionTransformerConfig? ModelConfig;

        /// <summary>
        /// Adds a learned 3×3 convolution over the output image to the preset (U-ViT's final convolution; see
        /// <see cref="DiffusionTransformerConfig.OutputConvolution"/>): it lets pixels at patch borders agree. Ignored when
        /// <see cref="ModelConfig"/> is set (set it there). Models with it do not export to DiT or MaskDiT.
        /// </summary>
        public bool OutputConvolution;

        /// <summary>
        /// Overlapping output windows for the preset, in pixels on each side of a patch (0..p/2; see
        /// <see cref="DiffusionTransformerConfig.OutputOverlap"/>): neighbouring tokens blend across the patch borders, so the
        /// p×p grid shows less. Ignored when <see cref="ModelConfig"/> is set (set it there). Models with it do not export to
        /// DiT or MaskDiT.
        /// </summary>
        public int OutputOverlap;

        // ------------------------------------------------------------------ method

        /// <summary>The training method: DiT, MaskDiT or MC-DiT. Ignored when <see cref="MethodOptions"/> is set.</summary>
        public TrainingMethod Method = TrainingMethod.McDiT;

        /// <summary>
        /// Every switch of the objective (mask ratio, MAE weight, label dropout, MC-DiT's clean inputs, branches and
        /// their weights, EDM σ distribution). Null uses <c>MethodOptions.For(Method)</c>; for example
        /// <c>MethodOptions.For(TrainingMethod.McDiT) with { MaskRatio = 0.25 }</c>.
        /// </summary>
        public MethodOptions? MethodOptions;

        // ------------------------------------------------------------------ optimisation

        /// <summary>Optimizer steps of the (masked) pre-training stage.</summary>
        public int NumberOfSteps = 1000;

        /// <summary>Optimizer steps of stage 2, unmasking tuning (mask ratio 0, no branches, learning rate halved), after <see cref="NumberOfSteps"/>; 0 skips it.</summary>
        public int UnmaskTuningSteps;

        /// <summary>Stop after this many passes over the data even if steps remain; null = no limit.</summary>
        public int? MaximumNumberOfEpochs;

        /// <summary>Rows per training step (the last batch of an epoch may be smaller); in a data-parallel job, over all ranks together.</summary>
        public int BatchSize = 64;

        /// <summary>AdamW learning rate (1e-4 as MaskDiT; up to 3e-4 for tiny models).</summary>
        public double LearningRate = 1e-4;

        /// <summary>Steps of linear learning-rate warm-up at the start of training (0: none).</summary>
        public int LearningRateWarmupSteps;

        /// <summary>
        /// How the learning rate falls over the run: Constant (MaskDiT's recipe), or Cosine down to 0 at the last step of
        /// <see cref="NumberOfSteps"/> + <see cref="UnmaskTuningSteps"/> (for the 950-step demo it was worse than Constant: docs/results.md).
        /// </summary>
        public LearningRateDecay LearningRateDecay = LearningRateDecay.Constant;

        /// <summary>AdamW decoupled weight decay.</summary>
        public double WeightDecay;

        /// <summary>Decay of the weight EMA whose weights the returned model samples with (0.999 for short runs, 0.9999 for long ones; 0 keeps the last weights).</summary>
        public double EmaDecay = 0.999;

        /// <summary>Clip the global gradient norm to this value; 0 disables clipping.</summary>
        public double GradientClipNorm;

        /// <summary>Seed of initialisation, shuffling, noise and masks; null takes the MLContext's seed (or 0 when it has none).</summary>
        public int? Seed;

        /// <summary>Device: "cpu", "cuda", "cuda:N" or "auto" (CUDA when available).</summary>
        public string Device = "auto";

        /// <summary>
        /// libtorch's CPU threads. Null: chosen once per process (unless the application chose already, as <c>mcdit</c>
        /// does) from the cores free at the start (at least 2 on a multi-core CPU, for the two single-thread batch halves),
        /// or <c>OMP_NUM_THREADS</c> when set; OpenMP is told to sleep rather
        /// than spin while waiting, so training on a busy machine slows only in proportion to its share of the CPUs
        /// (<see cref="McDit.Torch.Runtime.TorchThreadPolicy"/>). A number sets it for this process.
        /// </summary>
        public int? Threads;

        /// <summary>Precision of the forward and backward passes (bfloat16 is meant for CUDA).</summary>
        public TrainingPrecision Precision = TrainingPrecision.Float32;

        /// <summary>
        /// Data-parallel training across processes (see docs/distributed.md). By default the world comes from the
        /// launcher's environment: under <c>mpirun -np N</c> (or a torchrun-style launcher on CUDA) every process calls
        /// <c>Fit</c> with the same options and data, each trains on its shard of every global batch of
        /// <see cref="BatchSize"/> rows (the same shuffled order on every rank, rows strided over the ranks), gradients
        /// are summed over the ranks, and every rank returns the same model. Only rank 0 writes checkpoints and calls
        /// <see cref="StepCallback"/>; resuming needs a <see cref="CheckpointFolder"/> every rank can read. A rank that
        /// fails ends the whole job (MPI_Abort) so the others do not wait for it. Started on its own, a process trains
        /// alone, exactly as without this option.
        /// </summary>
        public McDit.Torch.Distributed.DistributedOptions Distributed = new();

        /// <summary>
        /// Stops training with an <see cref="OperationCanceledException"/> when cancelled (checked before every step,
        /// as is the MLContext's own cancellation).
        /// </summary>
        public CancellationToken CancellationToken;

        /// <summary>Log the loss through the MLContext's log every this many steps (and at the end).</summary>
        public int LoggingInterval = 50;

        /// <summary>
        /// Folder for training checkpoints (<c>step-N/</c> plus a <c>latest</c> pointer, see
        /// <see cref="McDit.Torch.Training.CheckpointSeries"/>); null writes none. With a folder, a checkpoint is also
        /// written when training is cancelled, before the cancellation exception leaves <c>Fit</c>.
        /// </summary>
        public string? CheckpointFolder;

        /// <summary>Write a checkpoint every this many steps (0: only at the end and on cancellation).</summary>
        public int CheckpointInterval;

        /// <summary>
        /// Continue from the newest intact checkpoint in <see cref="CheckpointFolder"/>: weights, optimizer, EMA, branches,
        /// random state and data position are restored, so the result equals an uninterrupted run on the same data.
        /// Damaged checkpoints (files that fail their manifest, out-of-range values, wrong tensors) are reported through
        /// <see cref="DamagedCheckpointCallback"/> and the trainer's log, and passed over. Without any checkpoint there,
        /// training starts fresh; when every checkpoint there is damaged, <c>Fit</c> throws <see cref="InvalidDataException"/>.
        /// </summary>
        public bool ResumeFromCheckpoint;

        /// <summary>Called when resuming passes over a damaged checkpoint (its folder and what is wrong), before an older one is tried.</summary>
        public Action<CheckpointSeries.Damaged>? DamagedCheckpointCallback;

        /// <summary>Called once when training resumes from a checkpoint (its folder and step), before the first step.</summary>
        public Action<string, long>? ResumeCallback;

        /// <summary>Called after every optimizer step (on the training thread; in a data-parallel job on rank 0 only), e.g. for progress displays, metric logs or sample grids.</summary>
        public Action<McDitTrainingStep>? StepCallback;

        // ------------------------------------------------------------------ generation defaults of the returned model

        /// <summary>Sampler steps N of the returned model (18 is enough for small data; MaskDiT uses 40).</summary>
        public int SamplingSteps = 18;

        /// <summary>ODE solver of the returned model: Heun (2N − 1 evaluations) or Euler (N).</summary>
        public SamplerSolver Solver = SamplerSolver.Heun;

        /// <summary>Classifier-free guidance scale of the returned model (1 = none; 1.5 for FID as MaskDiT).</summary>
        public double GuidanceScale = 1.0;

        /// <summary>
        /// The returned model guides only at noise levels σ above this (0: every step; Kynkäänniemi et al. 2024 use 0.28 with
        /// EDM2); evaluations outside the interval cost half.
        /// </summary>
        public double GuidanceSigmaMin = 0;

        /// <summary>… and only at σ up to this (+∞: no upper end).</summary>
        public double GuidanceSigmaMax = double.PositiveInfinity;

        /// <summary>
        /// The returned model's sampler rolls the image by this many pixels at every other evaluation (see
        /// <see cref="SamplerOptions.AlternatingShift"/>), so patch borders move between evaluations; 0: none.
        /// </summary>
        public int AlternatingShift = 0;

        /// <summary>… only at σ up to this (+∞: at every other evaluation).</summary>
        public double AlternatingShiftSigmaMax = double.PositiveInfinity;

        /// <summary>Rows the returned model generates per sampler run.</summary>
        public int GenerationBatchSize = 64;

        /// <summary>The returned model's output column of generated images (ImageDataViewType, MLImage).</summary>
        public string GeneratedImageColumnName = "GeneratedImage";

        /// <summary>
        /// The returned model's output column of generated pixels: a float vector [C, H, W] (CHW order) in the input range
        /// [<see cref="InputMinimum"/>, <see cref="InputMaximum"/>], [0, 1] by default (decoded latent models: [0, 1]).
        /// </summary>
        public string GeneratedPixelsColumnName = "GeneratedPixels";

        /// <summary>
        /// An optional whole-number column (Int32, Int64, …; not a key) of per-row seeds read by the returned model; without
        /// it row i uses <see cref="GenerationSeed"/> + i. A pipeline that ends in this trainer passes its training data
        /// through the trained model, so the column must be in the training data too (checked before training); to read
        /// seeds only when generating, leave this null and use <c>model.WithSampling(seedColumnName: …)</c>.
        /// </summary>
        public string? SeedColumnName;

        /// <summary>Base seed of the returned model when rows carry no seed column.</summary>
        public long GenerationSeed;

        // ------------------------------------------------------------------ latent space

        /// <summary>
        /// A VAE (diffusers folder or <c>.safetensors</c> file) whose latents the image column holds, for example from
        /// <c>EncodeLatents(vaePath: …)</c> or a latent cache. The column is then taken as it is (scaled latents, not
        /// pixels: <see cref="InputMinimum"/>, <see cref="InputMaximum"/> and <see cref="ValidateInputRange"/> are not
        /// used), and the returned model decodes its samples with this VAE (saved in its zip), so its generated columns
        /// hold images in [0, 1] of 8× the latent size. Ignored when <see cref="LatentDecoder"/> is set.
        /// </summary>
        public string? LatentDecoderPath;

        /// <summary>Like <see cref="LatentDecoderPath"/>, with a VAE already loaded (shared with the returned model, not copied).</summary>
        public McDit.Torch.Vae.AutoencoderKL? LatentDecoder;

        /// <summary>A shallow copy (the trainer adjusts the copy for latent-space data).</summary>
        internal Options Clone() => (Options)MemberwiseClone();
    }
}
