package tflstm.sample;

import java.io.File;
import java.io.FileOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * tflstm state files: the format Python's {@code tflstm.runtime} writes and reads
 * ({@code tflstm/runtime/state_file.py}), so a stream saved on one side resumes on the other.
 *
 * <p>Layout, little-endian throughout: the magic {@code TFLSTMS2}; the header size (u32);
 * the header: fingerprint (u16 length + ASCII), state count (u16), then per state its name
 * (u16 length + UTF-8), TensorType code (u8: 0 float32, 9 int8, 7 int16), rank (u8) and
 * dims (u32 each); the payload (every state's values in header order); and the SHA-256 of
 * every byte before it (32 bytes).
 *
 * <p>Plain Java 8 with no Android dependency, so it runs (and is tested) on any JVM.
 */
public final class TflstmStateFile {

    /** TensorType codes of the state dtypes. */
    public static final byte FLOAT32 = 0;
    public static final byte INT16 = 7;
    public static final byte INT8 = 9;

    private static final byte[] MAGIC = "TFLSTMS2".getBytes(StandardCharsets.US_ASCII);
    private static final int DIGEST_SIZE = 32;

    private TflstmStateFile() {}

    /** One state tensor: its name, TensorType code, shape and little-endian bytes. */
    public static final class Entry {
        public final String name;
        public final byte type;
        public final int[] shape;
        public final byte[] data;

        public Entry(String name, byte type, int[] shape, byte[] data) {
            long expected = elementSize(type);
            for (int d : shape) {
                if (d < 0) throw new IllegalArgumentException("State " + name + " has a negative dimension.");
                expected *= d;
            }
            if (expected != data.length) {
                throw new IllegalArgumentException(
                    "State " + name + " holds " + data.length + " bytes; its type and shape "
                        + Arrays.toString(shape) + " need " + expected + ".");
            }
            this.name = name;
            this.type = type;
            this.shape = shape.clone();
            this.data = data;
        }
    }

    /** The file bytes of {@code states} for the model with {@code fingerprint}. */
    public static byte[] encode(List<Entry> states, String fingerprint) {
        ByteArrayBuilder header = new ByteArrayBuilder();
        header.text(fingerprint.getBytes(StandardCharsets.US_ASCII));
        header.u16(states.size());
        int payloadSize = 0;
        for (Entry state : states) {
            header.text(state.name.getBytes(StandardCharsets.UTF_8));
            header.u8(state.type);
            header.u8(state.shape.length);
            for (int d : state.shape) header.u32(d);
            payloadSize += state.data.length;
        }
        byte[] head = header.toByteArray();
        ByteBuffer body = ByteBuffer.allocate(MAGIC.length + 4 + head.length + payloadSize + DIGEST_SIZE)
            .order(ByteOrder.LITTLE_ENDIAN);
        body.put(MAGIC).putInt(head.length).put(head);
        for (Entry state : states) body.put(state.data);
        byte[] bytes = body.array();
        System.arraycopy(sha256(bytes, bytes.length - DIGEST_SIZE), 0, bytes, bytes.length - DIGEST_SIZE, DIGEST_SIZE);
        return bytes;
    }

    /**
     * Parses file bytes written for the model with {@code fingerprint}.
     *
     * @return the states by name, in file order.
     * @throws IllegalArgumentException if the bytes are not a state file of this format, are
     *     damaged (checksum) or belong to another model; the message says which.
     */
    public static Map<String, Entry> decode(byte[] bytes, String fingerprint, String source) {
        if (bytes.length < MAGIC.length
            || !Arrays.equals(Arrays.copyOfRange(bytes, 0, MAGIC.length - 1), Arrays.copyOf(MAGIC, MAGIC.length - 1))) {
            throw new IllegalArgumentException(source + " is not a tflstm state file (expected it to start with TFLSTMS2).");
        }
        if (bytes[MAGIC.length - 1] != MAGIC[MAGIC.length - 1]) {
            throw new IllegalArgumentException(
                source + " has state file format '" + (char) bytes[MAGIC.length - 1] + "'; this class reads format 2.");
        }
        int bodySize = bytes.length - DIGEST_SIZE;
        if (bodySize < MAGIC.length + 4
            || !Arrays.equals(sha256(bytes, bodySize), Arrays.copyOfRange(bytes, bodySize, bytes.length))) {
            throw new IllegalArgumentException(source + " is damaged: its checksum does not match its contents.");
        }
        ByteBuffer in = ByteBuffer.wrap(bytes, 0, bodySize).order(ByteOrder.LITTLE_ENDIAN);
        try {
            in.position(MAGIC.length);
            long headerSize = in.getInt() & 0xFFFFFFFFL;
            if (MAGIC.length + 4 + headerSize > bodySize) throw damaged(source, "its header runs past its end");
            int headerEnd = MAGIC.length + 4 + (int) headerSize;
            String saved = new String(text(in), StandardCharsets.US_ASCII);
            if (!saved.equals(fingerprint)) {
                throw new IllegalArgumentException(
                    source + " holds the state of another model: weights fingerprint " + saved + ", expected " + fingerprint + ".");
            }
            int count = in.getShort() & 0xFFFF;
            List<Object[]> layout = new ArrayList<>();
            for (int k = 0; k < count; k++) {
                String name = new String(text(in), StandardCharsets.UTF_8);
                byte type = in.get();
                int rank = in.get() & 0xFF;
                int[] shape = new int[rank];
                for (int r = 0; r < rank; r++) shape[r] = in.getInt();
                layout.add(new Object[] {name, type, shape});
            }
            if (in.position() != headerEnd) throw damaged(source, "its header size does not match its entries");
            Map<String, Entry> states = new LinkedHashMap<>();
            for (Object[] item : layout) {
                byte type = (Byte) item[1];
                int[] shape = (int[]) item[2];
                long size = elementSize(type);
                for (int d : shape) size *= d & 0xFFFFFFFFL;
                if (size > in.remaining()) throw damaged(source, "state " + item[0] + " runs past the payload");
                byte[] data = new byte[(int) size];
                in.get(data);
                if (states.put((String) item[0], new Entry((String) item[0], type, shape, data)) != null) {
                    throw damaged(source, "it names state " + item[0] + " twice");
                }
            }
            if (in.hasRemaining()) throw damaged(source, "it has bytes after its payload");
            return Collections.unmodifiableMap(states);
        } catch (java.nio.BufferUnderflowException e) {
            throw damaged(source, "it is shorter than its header says");
        }
    }

    /** Writes atomically: a temporary file in the same folder, synced, then renamed over {@code file}. */
    public static void write(File file, List<Entry> states, String fingerprint) throws IOException {
        byte[] bytes = encode(states, fingerprint);
        File temporary = new File(file.getPath() + ".tmp");
        try {
            try (FileOutputStream out = new FileOutputStream(temporary)) {
                out.write(bytes);
                out.flush();
                out.getFD().sync();
            }
            if (!temporary.renameTo(file)) throw new IOException("Could not rename " + temporary + " to " + file + ".");
        } catch (IOException e) {
            temporary.delete();
            throw e;
        }
    }

    /** Reads a file written for the model with {@code fingerprint}; see {@link #decode}. */
    public static Map<String, Entry> read(File file, String fingerprint) throws IOException {
        return decode(Files.readAllBytes(file.toPath()), fingerprint, file.getPath());
    }

    static int elementSize(byte type) {
        switch (type) {
            case FLOAT32: return 4;
            case INT16: return 2;
            case INT8: return 1;
            default: throw new IllegalArgumentException("Unsupported state type code " + type + " (0 float32, 9 int8, 7 int16).");
        }
    }

    private static IllegalArgumentException damaged(String source, String why) {
        return new IllegalArgumentException(source + " is damaged: " + why + ".");
    }

    private static byte[] text(ByteBuffer in) {
        byte[] value = new byte[in.getShort() & 0xFFFF];
        in.get(value);
        return value;
    }

    private static byte[] sha256(byte[] bytes, int length) {
        try {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            digest.update(bytes, 0, length);
            return digest.digest();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM.", e);
        }
    }

    private static final class ByteArrayBuilder {
        private final java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();

        void u8(int value) { out.write(value); }

        void u16(int value) {
            if (value > 0xFFFF) throw new IllegalArgumentException("Value " + value + " does not fit 16 bits.");
            out.write(value & 0xFF);
            out.write(value >>> 8);
        }

        void u32(int value) {
            for (int k = 0; k < 4; k++) out.write(value >>> (8 * k));
        }

        void text(byte[] value) {
            u16(value.length);
            out.write(value, 0, value.length);
        }

        byte[] toByteArray() { return out.toByteArray(); }
    }
}
