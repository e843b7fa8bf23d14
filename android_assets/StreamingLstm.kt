package tflstm.sample

import android.content.res.AssetManager
import java.io.Closeable
import java.io.File
import java.io.FileInputStream
import java.io.IOException
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.MappedByteBuffer
import java.nio.channels.FileChannel
import org.tensorflow.lite.DataType
import org.tensorflow.lite.Interpreter

/**
 * Runs a tflstm step model one time step per call, with the LSTM state of each
 * stream carried explicitly, so that one interpreter serves many independent
 * streams and a stream can be saved and restored.
 *
 * A tflstm step model has a SignatureDef named `step`. Its inputs are the feature
 * input (e.g. `features`, float32 [1, 1, 8]) and, per LSTM layer, the state
 * tensors `<layer>/h` and `<layer>/c`; its outputs are the model output (e.g.
 * `predictions`, float32 [1, 1, 10]) and the same state names, holding the state
 * after the step. In full-int8 models `h` is int8 and `c` is int16 (real =
 * scale * (q - zero_point)); the feature input and the model output stay float32.
 * This class treats every state tensor as raw bytes sized from the interpreter's
 * signature tensors, so float32, int8 and int16 states are handled alike.
 *
 * Each [StreamState] owns two direct, native-order buffers per state tensor: one
 * is passed as the input, the other receives the output, then the two are
 * swapped. A step therefore allocates nothing of its own beyond the returned
 * array, and none at all with the `result` overload (LiteRT's Java binding may
 * still allocate small objects inside `runSignature`).
 *
 * The fused LSTM op also keeps the state inside the interpreter between calls. An
 * app with a single stream can therefore skip this class: run the `step`
 * signature with only the feature input and call `Interpreter.resetVariableTensors()`
 * between sequences (see README.md). After a step of this class the interpreter's
 * own state is that of the last stream stepped.
 *
 * Not thread-safe: use one [StreamingLstm] per thread. A [StreamState] belongs
 * to the [StreamingLstm] that created it (use [save] and [load] to move one).
 *
 * Example: classify an 8x8 digit streamed one row at a time (the digits assets
 * take pixel / 16 as features; see `task` in manifest.json).
 *
 * ```kotlin
 * val model = StreamingLstm.mapAsset(context.assets, "digits_step_float32.tflite")
 * StreamingLstm(model).use { lstm ->
 *     val stream = lstm.newStream()
 *     val row = FloatArray(8)
 *     val probabilities = FloatArray(lstm.outputSize)
 *     for (r in 0 until 8) {
 *         for (c in 0 until 8) row[c] = pixels[r * 8 + c] / 16f  // pixels: IntArray(64), 0..16
 *         lstm.step(stream, row, probabilities)  // class probabilities after this row
 *     }
 *     val digit = probabilities.indices.maxByOrNull { probabilities[it] }  // the argmax
 *     lstm.reset(stream)  // ready for the next digit
 * }
 * ```
 *
 * @param model the `.tflite` model: a [MappedByteBuffer] (see [mapAsset]) or a
 *     direct [ByteBuffer] in native order. The interpreter keeps using it: do not
 *     modify it.
 * @param numThreads interpreter threads. Default: 1.
 * @throws IllegalArgumentException if the model has no `step` signature, or one
 *     this class does not support: it needs one float32 feature input, one
 *     float32 model output and float32, int8 or int16 state tensors.
 */
class StreamingLstm @JvmOverloads constructor(model: ByteBuffer, numThreads: Int = 1) : Closeable {

    /** One LSTM state tensor of the `step` signature. */
    class StateInfo internal constructor(
        /** Signature name, `<layer>/h` or `<layer>/c`. */
        val name: String,
        /** FLOAT32, or INT8 (`h`) and INT16 (`c`) in full-int8 models. */
        val dataType: DataType,
        /** Tensor shape, e.g. [1, 128]. */
        val shape: List<Int>,
        /** Size of the tensor in bytes. */
        val numBytes: Int,
        /** Quantization scale: real = scale * (q - zeroPoint); 0 for float tensors. */
        val scale: Float,
        /** Quantization zero point; 0 for float tensors. */
        val zeroPoint: Int
    ) {
        override fun toString(): String = "$name ${dataType.name} $shape"
    }

    /**
     * The LSTM state of one stream: two buffers per state tensor, in [states] order.
     * Create with [newStream] or [load].
     */
    class StreamState internal constructor(
        internal val owner: StreamingLstm,
        internal var current: Array<ByteBuffer>,
        internal var spare: Array<ByteBuffer>
    ) {
        /** Number of [StreamingLstm.step] calls since creation or the last reset. */
        var steps: Long = 0
            internal set
    }

    private val interpreter: Interpreter
    private val featureBuffer: ByteBuffer
    private val outputBuffer: ByteBuffer
    private val inputs = HashMap<String, Any>()
    private val outputs = HashMap<String, Any>()
    private var closed = false

    /** Name of the feature input, e.g. `features`. */
    val inputName: String

    /** Name of the model output, e.g. `predictions`. */
    val outputName: String

    /** Number of float32 features per step (8 for the digits assets). */
    val featureSize: Int

    /** Number of float32 values [step] returns (10 for the digits assets). */
    val outputSize: Int

    /** The state tensors, sorted by name. */
    val states: List<StateInfo>

    init {
        require(numThreads >= 1) { "numThreads must be >= 1, got $numThreads." }
        interpreter = Interpreter(model, Interpreter.Options().setNumThreads(numThreads))
        try {
            val keys = interpreter.signatureKeys.toList()
            require(SIGNATURE in keys) {
                "The model has no '$SIGNATURE' signature (it has $keys): convert it with tflstm, streaming=True."
            }
            val inputNames = interpreter.getSignatureInputs(SIGNATURE).toList()
            val outputNames = interpreter.getSignatureOutputs(SIGNATURE).toList()
            val stateNames = inputNames.filter { it in outputNames }.sorted()
            val featureNames = inputNames.filter { it !in stateNames }
            val modelOutputNames = outputNames.filter { it !in stateNames }
            require(featureNames.size == 1 && modelOutputNames.size == 1 && stateNames.isNotEmpty()) {
                "Expected one feature input, one model output and state tensors in the '$SIGNATURE' " +
                    "signature; got inputs $inputNames and outputs $outputNames."
            }
            inputName = featureNames[0]
            outputName = modelOutputNames[0]

            val featureTensor = interpreter.getInputTensorFromSignature(inputName, SIGNATURE)
            val outputTensor = interpreter.getOutputTensorFromSignature(outputName, SIGNATURE)
            require(featureTensor.dataType() == DataType.FLOAT32 && outputTensor.dataType() == DataType.FLOAT32) {
                "Expected float32 '$inputName' and '$outputName', got ${featureTensor.dataType()} " +
                    "and ${outputTensor.dataType()}."
            }
            featureSize = featureTensor.numElements()
            outputSize = outputTensor.numElements()
            featureBuffer = directBuffer(featureTensor.numBytes())
            outputBuffer = directBuffer(outputTensor.numBytes())

            states = stateNames.map { name ->
                val tensor = interpreter.getInputTensorFromSignature(name, SIGNATURE)
                val out = interpreter.getOutputTensorFromSignature(name, SIGNATURE)
                val dataType = tensor.dataType()
                require(dataType in STATE_TYPES) {
                    "State '$name' is $dataType; expected one of $STATE_TYPES."
                }
                require(out.dataType() == dataType && out.numBytes() == tensor.numBytes()) {
                    "State '$name' differs between the inputs and outputs of '$SIGNATURE'."
                }
                val quantization = tensor.quantizationParams()
                StateInfo(
                    name, dataType, tensor.shape().toList(), tensor.numBytes(),
                    quantization.scale, quantization.zeroPoint
                )
            }
        } catch (e: RuntimeException) {
            interpreter.close()
            throw e
        }
    }

    /** A new stream in the zero state (the zero point for quantized states). */
    fun newStream(): StreamState {
        checkOpen()
        val stream = StreamState(
            this,
            Array(states.size) { directBuffer(states[it].numBytes) },
            Array(states.size) { directBuffer(states[it].numBytes) }
        )
        reset(stream)
        return stream
    }

    /** Puts [stream] back in the zero state, e.g. before a new sequence. */
    fun reset(stream: StreamState) {
        checkStream(stream)
        for (i in states.indices) {
            fillZero(stream.current[i], states[i])
            fillZero(stream.spare[i], states[i])
        }
        stream.steps = 0
    }

    /**
     * Runs one time step of [stream] and advances its state.
     *
     * @param features the [featureSize] features of this step (already normalized
     *     the way the model was trained).
     * @param result where to write the [outputSize] outputs; pass the same array
     *     every step to avoid allocating. Default: a new array.
     * @return [result], holding the model output after this step (class
     *     probabilities for the digits assets).
     */
    @JvmOverloads
    fun step(stream: StreamState, features: FloatArray, result: FloatArray = FloatArray(outputSize)): FloatArray {
        checkStream(stream)
        require(features.size == featureSize) { "Expected $featureSize features, got ${features.size}." }
        require(result.size == outputSize) { "Expected a result array of $outputSize, got ${result.size}." }
        for (i in features.indices) featureBuffer.putFloat(i * 4, features[i])

        inputs[inputName] = featureBuffer
        outputBuffer.clear()
        outputs[outputName] = outputBuffer
        for (i in states.indices) {
            val name = states[i].name
            // Inputs are copied from the buffer's start; outputs are written at its
            // position, so rewind them.
            stream.current[i].clear()
            stream.spare[i].clear()
            inputs[name] = stream.current[i]
            outputs[name] = stream.spare[i]
        }
        interpreter.runSignature(inputs, outputs, SIGNATURE)

        val previous = stream.current
        stream.current = stream.spare
        stream.spare = previous
        stream.steps++
        for (i in 0 until outputSize) result[i] = outputBuffer.getFloat(i * 4)
        return result
    }

    /**
     * Writes the state of [stream] to [file] in tflstm's state file format, which
     * Python's `tflstm.runtime` reads too ([TflstmStateFile]): atomically (a
     * temporary file, synced to storage, renamed over [file]), so a crash leaves the
     * old file or the new one, never a torn one. The file is small (under 2 KiB for
     * the digits models), but this is disk I/O: call it off the main thread if the
     * app enforces StrictMode.
     *
     * @param fingerprint the model's weights fingerprint: `metadata.fingerprint` in
     *     manifest.json. [load] refuses a file written for another fingerprint.
     * @throws IOException if the file cannot be written.
     */
    fun save(stream: StreamState, file: File, fingerprint: String) {
        checkStream(stream)
        requireLittleEndian()
        val entries = states.mapIndexed { i, state ->
            val bytes = ByteArray(state.numBytes)
            val view = stream.current[i].duplicate()
            view.clear()
            view.get(bytes)
            TflstmStateFile.Entry(state.name, typeCode(state.dataType), state.shape.toIntArray(), bytes)
        }
        TflstmStateFile.write(file, entries, fingerprint)
    }

    /**
     * Reads a stream written by [save], or by Python's `save_state`, for this model.
     *
     * @param fingerprint this model's weights fingerprint (`metadata.fingerprint` in
     *     manifest.json).
     * @return a new stream holding the saved state ([StreamState.steps] is 0).
     * @throws IllegalArgumentException if the file is not a state file, was
     *     written for another model (fingerprint, state names, types or shapes), or
     *     is damaged (checksum). The message says what was expected.
     * @throws IOException if the file cannot be read.
     */
    fun load(file: File, fingerprint: String): StreamState {
        checkOpen()
        requireLittleEndian()
        val saved = TflstmStateFile.read(file, fingerprint)
        val expected = states.map { it.name }.sorted()
        require(saved.keys.sorted() == expected) {
            "$file holds states ${saved.keys.sorted()}; expected $expected."
        }
        for (state in states) {
            val entry = saved.getValue(state.name)
            require(entry.type == typeCode(state.dataType) && entry.shape.toList() == state.shape) {
                "$file holds ${state.name} as type ${entry.type} ${entry.shape.toList()}; expected " +
                    "${typeCode(state.dataType)} ${state.shape}."
            }
        }
        val stream = newStream()
        for (i in states.indices) {
            val buffer = stream.current[i]
            buffer.clear()
            buffer.put(saved.getValue(states[i].name).data)
            buffer.clear()
        }
        return stream
    }

    /** Releases the interpreter. Streams of this instance become unusable. */
    override fun close() {
        if (!closed) {
            closed = true
            interpreter.close()
        }
    }

    private fun checkOpen() {
        check(!closed) { "This StreamingLstm is closed." }
    }

    private fun checkStream(stream: StreamState) {
        checkOpen()
        require(stream.owner === this) {
            "The stream belongs to another StreamingLstm: move it with save() and load()."
        }
    }

    companion object {
        /** The signature tflstm step models run through. */
        const val SIGNATURE = "step"

        private val STATE_TYPES = listOf(DataType.FLOAT32, DataType.INT8, DataType.INT16)

        /**
         * Memory-maps an asset stored uncompressed (see README.md: `noCompress`).
         *
         * @throws IOException if the asset is missing or compressed.
         */
        @JvmStatic
        fun mapAsset(assets: AssetManager, name: String): MappedByteBuffer =
            assets.openFd(name).use { descriptor ->
                FileInputStream(descriptor.fileDescriptor).use { stream ->
                    stream.channel.map(
                        FileChannel.MapMode.READ_ONLY, descriptor.startOffset, descriptor.declaredLength
                    )
                }
            }

        private fun directBuffer(size: Int): ByteBuffer =
            ByteBuffer.allocateDirect(size).order(ByteOrder.nativeOrder())

        /** State files are little-endian, as are the direct buffers on every Android ABI. */
        private fun requireLittleEndian() {
            check(ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) {
                "State files hold little-endian bytes; this device is big-endian."
            }
        }

        private fun typeCode(type: DataType): Byte = when (type) {
            DataType.FLOAT32 -> TflstmStateFile.FLOAT32
            DataType.INT8 -> TflstmStateFile.INT8
            DataType.INT16 -> TflstmStateFile.INT16
            else -> throw IllegalArgumentException("Unsupported state type $type.")
        }

        /** Fills [buffer] with the zero state of [state]: 0.0, or the zero point. */
        private fun fillZero(buffer: ByteBuffer, state: StateInfo) {
            buffer.clear()
            when (state.dataType) {
                DataType.INT8 -> while (buffer.hasRemaining()) buffer.put(state.zeroPoint.toByte())
                DataType.INT16 -> while (buffer.hasRemaining()) buffer.putShort(state.zeroPoint.toShort())
                else -> while (buffer.hasRemaining()) buffer.putFloat(0f)
            }
            buffer.clear()
        }
    }
}
